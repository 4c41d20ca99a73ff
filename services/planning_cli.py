"""`waystation plan ...` and `waystation report ...`: the planner workbench from a terminal.

They talk to a running waystation over HTTP (the live state is in that process), with a
planner key: `--key`, or the demo planner key that the first `waystation run` wrote."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from geo.crs import Datum
from schemas.planning import Network, Objective
from schemas.reports import ReportFormat
from services.demo_keys import DEMO_KEYS_FILE
from waystation.settings import Settings

plan_app = typer.Typer(help="Siting suggestions and what-if scenarios on the live state.")
report_app = typer.Typer(help="Gap reports in JSON, GeoJSON, CSV or HTML.")
console = Console(stderr=True)
REQUEST_TIMEOUT_S = 600.0  # a city-scale exact solve can take minutes
EXIT_REFUSED = 2


UrlOption = Annotated[
    str | None, typer.Option(help="The waystation API (default: the configured host and port)")
]
KeyOption = Annotated[
    str | None, typer.Option(help="A planner or admin key (default: the demo planner key)")
]
DistrictOption = Annotated[str | None, typer.Option(help="District (default: the key's own)")]


def _client(url: str | None, key: str | None) -> httpx.Client:
    settings = Settings()
    if key is None:
        demo = settings.data_dir / DEMO_KEYS_FILE
        if not demo.exists():
            console.print("[red]No key:[/] pass --key (a planner or admin key)")
            raise typer.Exit(EXIT_REFUSED)
        key = json.loads(demo.read_text())["planner"]["key"]
    base = url or f"http://{settings.api_host}:{settings.api_port}"
    return httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=REQUEST_TIMEOUT_S
    )


def _call(client: httpx.Client, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
    """One request with a spinner and the elapsed time (solves can be long); a problem answer
    is printed with its fields and ends the command."""
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        progress.add_task(what, total=None)
        try:
            answer = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            console.print(f"[red]Cannot reach {client.base_url}:[/] {exc}")
            raise typer.Exit(EXIT_REFUSED) from exc
    if answer.status_code >= 400:
        _print_problem(answer)
        raise typer.Exit(EXIT_REFUSED)
    return answer


def _print_problem(answer: httpx.Response) -> None:
    try:
        body = answer.json()
    except ValueError:
        console.print(f"[red]{answer.status_code}[/] {answer.text[:500]}")
        return
    console.print(f"[red]{answer.status_code} {body.get('title', '')}[/]: {body.get('detail', '')}")
    for error in body.get("errors", []):
        console.print(f"  {error.get('field')}: {error.get('reason')}")


@report_app.command("gaps")
def report_gaps(
    format: Annotated[
        ReportFormat, typer.Option(help="json, geojson, csv or html")
    ] = ReportFormat.json,
    district: DistrictOption = None,
    within: Annotated[str | None, typer.Option(help="Only cells meeting this outline")] = None,
    level: Annotated[str, typer.Option(help="Which outlines --within names")] = "subdistrict",
    lang: Annotated[str, typer.Option(help="zh-CN or en (html)")] = "zh-CN",
    limit: Annotated[int, typer.Option(help="Most zones")] = 100,
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output")] = None,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """The gap report: zones ranked by uncovered demand."""
    params: dict[str, Any] = {"format": format.value, "lang": lang, "limit": limit}
    if district:
        params["district"] = district
    if within:
        params |= {"within": within, "level": level}
    with _client(url, key) as client:
        answer = _call(client, "GET", "/v1/reports/gaps", "gap report", params=params)
    if out is None:
        sys.stdout.buffer.write(answer.content)
    else:
        out.write_bytes(answer.content)
        console.print(f"wrote {out}")


def _candidates(client: httpx.Client, file: Path, crs: Datum) -> list[dict[str, Any]]:
    answer = _call(
        client,
        "POST",
        "/v1/planning/candidates",
        f"reading {file.name}",
        params={"crs": crs.value},
        content=file.read_bytes(),
    )
    body = answer.json()
    if body["errors"]:
        table = Table("row", "field", "reason", title=f"{body['rejected']} rows refused")
        for error in body["errors"]:
            table.add_row(str(error["row"]), error["field"], error["reason"])
        console.print(table)
    candidates: list[dict[str, Any]] = body["candidates"]
    return candidates


@plan_app.command("sites")
def plan_sites(
    k: Annotated[int, typer.Option(help="How many new stations")] = 10,
    objective: Annotated[Objective, typer.Option(help="What to maximise")] = Objective.coverage,
    target_share: Annotated[float, typer.Option(help="set_cover: share of demand")] = 0.9,
    network: Annotated[Network, typer.Option(help="live, or every station open")] = Network.live,
    seats: Annotated[int, typer.Option(help="Seats of a new station")] = 8,
    candidates: Annotated[
        Path | None, typer.Option(help="CSV (site_id,name,lat,lon) or GeoJSON points")
    ] = None,
    crs: Annotated[Datum, typer.Option(help="Datum of the candidate file")] = Datum.wgs84,
    exact: Annotated[bool, typer.Option(help="Solve exactly (small candidate lists)")] = False,
    district: DistrictOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON")] = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Where the next k stations should go, in order, with the demand each adds."""
    body: dict[str, Any] = {
        "k": k,
        "objective": objective.value,
        "target_share": target_share,
        "network": network.value,
        "seats": seats,
        "method": "exact" if exact else "heuristic",
    }
    if district:
        body["district"] = district
    with _client(url, key) as client:
        if candidates is not None:
            body["candidates"] = _candidates(client, candidates, crs)
        answer = _call(client, "POST", "/v1/planning/sites", "solving", json=body).json()
    if as_json:
        typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    table = Table("#", "site", "lat", "lon", "adds", "covered %", title="Suggested sites")
    for pick in answer["picks"]:
        table.add_row(
            str(pick["rank"]),
            pick["name"] or pick["site_id"],
            f"{pick['lat']:.6f}",
            f"{pick['lon']:.6f}",
            f"{pick['added']:.1f}",
            f"{pick['cumulative_demand_covered_pct']:.1f}",
        )
    Console().print(table)
    console.print(
        f"demand covered {answer['demand_covered_before_workers']:.0f} → "
        f"{answer['demand_covered_after_workers']:.0f} of {answer['demand_workers']:.0f} workers"
    )


def _site(text: str, n: int) -> dict[str, Any]:
    parts = text.split(",")
    if len(parts) not in (2, 3):
        raise typer.BadParameter(f"{text!r}: give lat,lon or lat,lon,seats")
    site: dict[str, Any] = {"site_id": f"new-{n}", "lat": float(parts[0]), "lon": float(parts[1])}
    if len(parts) == 3:
        site["seats"] = int(parts[2])
    return site


@plan_app.command("whatif")
def plan_whatif(
    close: Annotated[list[str] | None, typer.Option(help="Close this station (repeat)")] = None,
    reopen: Annotated[list[str] | None, typer.Option(help="Count it as open (repeat)")] = None,
    open_site: Annotated[
        list[str] | None, typer.Option(help="A new station at lat,lon[,seats] (repeat)")
    ] = None,
    seats: Annotated[
        list[str] | None, typer.Option(help="STATION=SEATS: change a station's seats (repeat)")
    ] = None,
    demand_scale: Annotated[float | None, typer.Option(help="Multiply demand")] = None,
    network: Annotated[Network, typer.Option(help="live, or every station open")] = Network.live,
    name: Annotated[str | None, typer.Option(help="Save the scenario under this name")] = None,
    district: DistrictOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON")] = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """What coverage would be after the changes, against now. Nothing live changes."""
    changes: dict[str, Any] = {
        "close": close or [],
        "reopen": reopen or [],
        "open_sites": [_site(text, n) for n, text in enumerate(open_site or [], start=1)],
        "seats": {},
        "network": network.value,
    }
    for item in seats or []:
        station, _, count = item.partition("=")
        if not count.isdigit():
            raise typer.BadParameter(f"{item!r}: give STATION=SEATS")
        changes["seats"][station] = int(count)
    if demand_scale is not None:
        changes["demand_scale"] = demand_scale
    body: dict[str, Any] = {"changes": changes, "name": name, "district": district}
    with _client(url, key) as client:
        answer = _call(client, "POST", "/v1/planning/whatif", "what-if", json=body).json()
    if as_json:
        typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    Console().print(
        f"cells gained {len(answer['cells_gained'])} ({answer['demand_gained_workers']:.1f} "
        f"workers), lost {len(answer['cells_lost'])} ({answer['demand_lost_workers']:.1f})\n"
        f"underserved demand {answer['underserved_demand_before_workers']:.1f} → "
        f"{answer['underserved_demand_after_workers']:.1f} workers\n"
        f"zones becoming underserved: {', '.join(answer['zones_becoming_underserved']) or '-'}\n"
        f"zones no longer underserved: {', '.join(answer['zones_no_longer_underserved']) or '-'}"
    )
    if answer.get("scenario_id") is not None:
        console.print(f"saved as scenario {answer['scenario_id']}")


@plan_app.command("scenarios")
def plan_scenarios(url: UrlOption = None, key: KeyOption = None) -> None:
    """Saved what-if scenarios, newest first."""
    with _client(url, key) as client:
        answer = _call(client, "GET", "/v1/planning/scenarios", "scenarios").json()
    table = Table("id", "name", "district", "created", title="Saved scenarios")
    for item in answer["scenarios"]:
        table.add_row(
            str(item["scenario_id"]), item["name"], item["district"] or "", item["created_at"]
        )
    Console().print(table)
