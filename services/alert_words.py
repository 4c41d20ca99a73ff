"""Alert transitions worded in Chinese for the group robots (WeCom, DingTalk, Feishu) that
district unions read. The dashboard words codes itself; a robot's message must arrive as
text, so the server words it here, from the same codes and values."""

from __future__ import annotations

from schemas.alerts import Alert, AlertKind
from schemas.reasons import Reason, ReasonCode
from services.amenity_words import AMENITIES_ZH

TRANSITIONS = {"opened": "新警报", "escalated": "警报升级", "resolved": "警报解除"}
KINDS = {
    AlertKind.zone_underserved: "区域服务不足",
    AlertKind.station_silent: "驿站失联",
    AlertKind.station_degraded: "驿站设施故障",
    AlertKind.station_overloaded: "驿站超负荷",
}
CHECK_IN = {"open": "开放", "paused": "暂停", "closed": "关闭"}


def reason_text(reason: Reason | None) -> str:
    if reason is None:
        return ""
    v = reason.values
    match reason.code:
        case ReasonCode.never_heard_from:
            return "从未上报"
        case ReasonCode.checked_in:
            return f"签到状态：{CHECK_IN.get(str(v['status']), v['status'])}"
        case ReasonCode.no_heartbeat:
            return f"自 {v['since']} 起没有心跳"
        case ReasonCode.amenities_out:
            names = [AMENITIES_ZH.get(a, a) for a in v["amenities"]]  # type: ignore[union-attr]
            return "停用：" + "、".join(names)
        case ReasonCode.open_and_reporting:
            return "开放，上报正常"
        case ReasonCode.uncovered_demand:
            return (
                f"{v['uncovered_workers']:.1f} / {v['demand_workers']:.1f} "
                "名预计劳动者在可达范围内没有开放的驿站"
            )
        case ReasonCode.over_capacity:
            return (
                f"最近 {v['window_minutes']:g} 分钟到访 {v['visitors']} 人，"
                f"座位 {v['seats']} 个（上限 {v['limit']:g}）"
            )


def title(transition: str, alert: Alert) -> str:
    return f"【{TRANSITIONS.get(transition, transition)}】{KINDS[alert.kind]}"


def message(transition: str, alert: Alert, subject_name: str | None) -> str:
    subject = f"{subject_name}（{alert.subject}）" if subject_name else alert.subject
    lines = [title(transition, alert), f"对象：{subject}"]
    if alert.district:
        lines.append(f"区：{alert.district}")
    why = reason_text(alert.evidence.reason)
    if why:
        lines.append(f"原因：{why}")
    return "\n".join(lines)
