"""A plain status page: enough for a union officer to see the system is alive and what it sees.
The full dashboard replaces it later."""

from __future__ import annotations

from datetime import datetime
from html import escape

from schemas.alerts import Alert
from schemas.api import CoverageSummary

REFRESH_SECONDS = 10


def render_status_page(
    summary: CoverageSummary, open_alerts: list[Alert], visits_today: int, now: datetime
) -> str:
    states = "".join(
        f"<tr><th>{escape(state.value)}</th><td>{count}</td></tr>"
        for state, count in summary.stations_by_state.items()
    )
    alerts = (
        "".join(
            f"<tr><td>{escape(a.kind.value)}</td><td>{escape(a.subject)}</td>"
            f"<td>{escape(a.opened_at.isoformat() if a.opened_at else '')}</td>"
            f"<td>{escape(a.evidence.detail)}</td></tr>"
            for a in open_alerts
        )
        or '<tr><td colspan="4">No open alerts</td></tr>'
    )
    zones = (
        "".join(
            f"<tr><td>{escape(z.zone)}</td><td>{z.uncovered_demand_workers:g}</td>"
            f"<td>{escape(', '.join(z.stations_down[:8]))}</td></tr>"
            for z in summary.underserved_zones[:15]
        )
        or '<tr><td colspan="3">None</td></tr>'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>waystation status</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1a1a1a; max-width: 70rem; }}
table {{ border-collapse: collapse; margin-bottom: 1.5rem; }}
th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }}
.kpi {{ font-size: 2rem; font-weight: 600; }}
</style></head>
<body>
<h1>waystation</h1>
<p>As of {escape(now.strftime("%Y-%m-%d %H:%M:%S %Z"))}</p>
<p>Demand covered: <span class="kpi" id="coverage-pct">{summary.demand_covered_pct:.1f}%</span>
 of {summary.demand_workers:g} expected workers; {summary.cells_covered} of {summary.cells}
 cells within reach of an open station.
 Visits today: <span id="visits-today">{visits_today}</span>.</p>
<h2>Stations by state</h2>
<table id="stations-by-state">{states}</table>
<h2>Open alerts ({len(open_alerts)})</h2>
<table id="open-alerts"><tr><th>kind</th><th>subject</th><th>opened</th><th>evidence</th></tr>
{alerts}</table>
<h2>Underserved zones</h2>
<table id="underserved-zones"><tr><th>zone</th><th>uncovered demand</th><th>stations down</th></tr>
{zones}</table>
<p>APIs: <a href="/docs">/docs</a> · <a href="/v1/coverage">/v1/coverage</a> ·
<a href="/v1/alerts?status=open">/v1/alerts</a> · <a href="/v1/reports/gaps">/v1/reports/gaps</a> ·
<a href="/metrics">/metrics</a></p>
</body></html>
"""
