# ruff: noqa: RUF001 (Chinese text takes full-width punctuation)
"""The worker's scan pages, in Chinese: one form (worker kind, services, one button), a
thank-you, and a clear page for each reason nothing was recorded. Plain HTML forms and one
stylesheet from this server: no scripts at all, so they work on any phone's browser."""

from __future__ import annotations

from html import escape

from schemas.stations import Station
from services.scan_desk import ScanOutcome, ScanResult

WORKER_KINDS_ZH = {
    "food_delivery": "外卖骑手",
    "courier": "快递员",
    "ride_hailing": "网约车司机",
    "truck_driver": "货车司机",
    "sanitation": "环卫工人",
    "other": "其他",
}
SERVICES_ZH = {
    "drinking_water": "饮水",
    "microwave": "微波炉热饭",
    "phone_charging": "手机充电",
    "ebike_charging": "电动车充电",
    "restroom": "卫生间",
    "rest_seats": "歇脚休息",
    "air_conditioning": "空调纳凉",
    "heating": "取暖",
    "first_aid": "应急药箱",
    "aed": "AED 除颤仪",
    "wifi": "无线网络",
    "lockers": "储物柜",
    "health_screening": "健康检查",
    "legal_aid": "法律援助",
    "counselling": "心理咨询",
}
PROBLEM_PAGES: dict[ScanOutcome, tuple[int, str, str]] = {
    ScanOutcome.forged: (
        403,
        "二维码无效",
        "这个二维码不是本站发放的，未记录任何信息。请扫描站点张贴的官方二维码。",
    ),
    ScanOutcome.revoked: (
        410,
        "二维码已停用",
        "这张海报的二维码已被站点停用（可能已更换新海报），未记录任何信息。请扫描站内最新张贴的二维码。",
    ),
    ScanOutcome.unknown_station: (404, "站点不存在", "这个站点已不在服务名录中，未记录任何信息。"),
    ScanOutcome.rate_limited: (429, "提交太频繁", "刚刚已经记录过了，请稍后再试。本次未重复记录。"),
    ScanOutcome.rejected: (422, "信息不完整", "请选择您的职业后再提交。本次未记录。"),
}


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><link rel="stylesheet" href="/static/scan.css">'
        f"</head><body><main>{body}</main></body></html>"
    )


def _station_header(station: Station) -> str:
    return f'<p class="station">{escape(station.name)}</p>'


def form_page(result: ScanResult, action: str) -> str:
    assert result.station is not None
    kinds = "".join(
        f'<label class="choice"><input type="radio" name="worker_kind" value="{k}" required>'
        f"<span>{escape(zh)}</span></label>"
        for k, zh in WORKER_KINDS_ZH.items()
    )
    services = "".join(
        f'<label class="choice"><input type="checkbox" name="services" value="{s}">'
        f"<span>{escape(SERVICES_ZH.get(s, s))}</span></label>"
        for s in result.services
    )
    body = (
        f"{_station_header(result.station)}<h1>扫码登记到站</h1>"
        f'<form method="post" action="{escape(action)}">'
        f'<fieldset><legend>您的职业</legend><div class="grid">{kinds}</div></fieldset>'
        f'<fieldset><legend>本次使用的服务（可多选）</legend><div class="grid">{services}</div>'
        "</fieldset>"
        '<details><summary>工会会员号（选填）</summary><label class="member">'
        '<input name="member_number" inputmode="numeric" maxlength="32" autocomplete="off">'
        "<small>仅用于统计服务人次，不会保存原号码</small></label></details>"
        '<button type="submit">确认登记</button></form>'
        '<p class="note">无需填写姓名、手机号等个人信息。</p>'
    )
    return _page("扫码登记", body)


def done_page(result: ScanResult, visits_today: int) -> str:
    assert result.station is not None
    used = "、".join(SERVICES_ZH.get(s, s) for s in result.services) or "到站休息"
    body = (
        f'{_station_header(result.station)}<h1 class="ok">登记成功，谢谢！</h1>'
        f"<p>已记录：{escape(used)}</p>"
        '<p class="count">本站今日已服务 '
        f'<strong id="visits-today">{visits_today}</strong> 人次</p>'
        '<p class="note">一路平安，注意休息。</p>'
    )
    return _page("登记成功", body)


def problem_page(result: ScanResult) -> tuple[int, str]:
    status, title, text = PROBLEM_PAGES[result.outcome]
    header = _station_header(result.station) if result.station is not None else ""
    body = f'{header}<h1 class="problem">{escape(title)}</h1><p>{escape(text)}</p>'
    return status, _page(title, body)
