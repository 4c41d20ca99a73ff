"""The monthly service report a union office sends upward: per subdistrict and in total,
visits, workers served, distinct workers, worker kinds and services used. Printable HTML and
CSV, in Chinese by default. Its numbers are the statistics API's (`visit_stats`)."""

from __future__ import annotations

import csv
import html
import io
from enum import StrEnum

from schemas.events import Service, WorkerKind
from schemas.stations import Amenity
from schemas.visit_stats import VisitStats, VisitStatsList
from services.amenity_words import AMENITIES_ZH


class ReportLanguage(StrEnum):
    zh = "zh-CN"
    en = "en"


WORDS = {
    ReportLanguage.zh: {
        "title": "{district} {month} 驿站服务月报",
        "subdistrict": "街道",
        "total": "合计",
        "visits": "到访次数",
        "people": "服务人次",
        "distinct_workers": "服务人数（去重）",
        "kinds": "劳动者类型（次）",
        "services": "使用的服务（次）",
        "none": "（无街道）",
        "note": "人数按匿名标识去重；未提供标识的到访只计入次数。",
    },
    ReportLanguage.en: {
        "title": "{district}: station services, {month}",
        "subdistrict": "Subdistrict",
        "total": "Total",
        "visits": "Visits",
        "people": "Workers served",
        "distinct_workers": "Distinct workers",
        "kinds": "Worker kinds (visits)",
        "services": "Services used",
        "none": "(no subdistrict)",
        "note": "Distinct workers are counted by anonymous reference; visits without one count "
        "as visits only.",
    },
}
KIND_WORDS = {
    ReportLanguage.zh: {
        "courier": "快递员",
        "food_delivery": "外卖骑手",
        "ride_hailing": "网约车司机",
        "truck_driver": "货车司机",
        "sanitation": "环卫工人",
        "other": "其他",
    },
    ReportLanguage.en: {k.value: k.value.replace("_", " ") for k in WorkerKind},
}
SERVICE_WORDS = {
    ReportLanguage.zh: {
        "health_screening": "健康筛查",
        "legal_aid": "法律援助",
        "counselling": "心理疏导",
        **AMENITIES_ZH,
    },
    ReportLanguage.en: {
        s.value: s.value.replace("_", " ")
        for s in (*Service, *Amenity)  # type: ignore[misc]
    },
}
KINDS = [k.value for k in WorkerKind]
SERVICES = [s.value for s in Service] + [a.value for a in Amenity]


def _columns(stats: VisitStatsList) -> tuple[list[str], list[str]]:
    """Worker kinds and services that occur, in a fixed order."""
    rows = [*stats.rows, stats.total]
    kinds = [k for k in KINDS if any(r.by_worker_kind.get(k) for r in rows)]
    services = [s for s in SERVICES if any(r.services_used.get(s) for r in rows)]
    return kinds, services


def _cells(row: VisitStats, kinds: list[str], services: list[str]) -> list[int]:
    return [
        row.visits,
        row.people,
        row.distinct_workers,
        *(row.by_worker_kind.get(k, 0) for k in kinds),
        *(row.services_used.get(s, 0) for s in services),
    ]


def _header(lang: ReportLanguage, kinds: list[str], services: list[str]) -> list[str]:
    w = WORDS[lang]
    return [
        w["subdistrict"],
        w["visits"],
        w["people"],
        w["distinct_workers"],
        *(KIND_WORDS[lang][k] for k in kinds),
        *(SERVICE_WORDS[lang][s] for s in services),
    ]


def report_csv(stats: VisitStatsList, lang: ReportLanguage) -> str:
    kinds, services = _columns(stats)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_header(lang, kinds, services))
    for row in stats.rows:
        writer.writerow([row.area or WORDS[lang]["none"], *_cells(row, kinds, services)])
    writer.writerow([WORDS[lang]["total"], *_cells(stats.total, kinds, services)])
    return out.getvalue()


def report_html(stats: VisitStatsList, month: str, lang: ReportLanguage) -> str:
    w = WORDS[lang]
    kinds, services = _columns(stats)
    title = w["title"].format(district=stats.district, month=month)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _header(lang, kinds, services))

    def line(name: str, row: VisitStats, css: str = "") -> str:
        cells = "".join(f"<td>{n:,}</td>" for n in _cells(row, kinds, services))
        return f'<tr class="{css}"><th scope="row">{html.escape(name)}</th>{cells}</tr>'

    body = "".join(line(r.area or w["none"], r) for r in stats.rows)
    body += line(w["total"], stats.total, "total")
    return f"""<!doctype html>
<html lang="{lang.value}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; font-size: .9rem; }}
th, td {{ border: 1px solid #999; padding: .25rem .5rem; }}
td {{ text-align: right; }}
tr.total {{ font-weight: bold; background: #eee; }}
@media print {{ body {{ margin: 0; }} }}
</style></head>
<body><h1>{html.escape(title)}</h1>
<table id="report"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<p>{html.escape(w["note"])}</p></body></html>
"""
