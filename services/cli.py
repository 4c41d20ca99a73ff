"""The `waystation` command."""

from __future__ import annotations

import contextlib
import json
import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from geo.crs import Datum
from geo.demand import check_demand_cells
from schemas.auth import Role
from schemas.export import export as export_schemas
from schemas.geography import BoundaryLevel
from waystation.settings import Settings

app = typer.Typer(help="Rest stations for outdoor workers: live coverage, alerts, gap reports.")
stations_app = typer.Typer(help="The station registry.")
demand_app = typer.Typer(help="The demand layer: expected outdoor workers per cell.")
boundaries_app = typer.Typer(help="District and subdistrict outlines.")
keys_app = typer.Typer(help="API keys: create, list, revoke.")
schemas_app = typer.Typer(help="Wire formats.")
app.add_typer(stations_app, name="stations")
app.add_typer(schemas_app, name="schemas")
app.add_typer(demand_app, name="demand")
app.add_typer(boundaries_app, name="boundaries")
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Crs(StrEnum):
    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings)")] = None,
    simulate: Annotated[
        bool | None, typer.Option("--simulate/--no-simulate", help="Feed simulated events")
    ] = None,
) -> None:
    """Start the embedded system: store, processors, simulator and the API."""
    from services.app import create_app
    from services.bootstrap import ensure_sample_city
    from services.demo_keys import ensure_demo_keys
    from services.server import Server
    from services.system import EmbeddedSystem

    _logging()
    settings = Settings()
    system = EmbeddedSystem(settings, simulate=simulate)
    if ensure_sample_city(system.store, settings):
        console.print("[green]First start:[/] loaded the sample city.")
    if settings.demo_keys:
        keys_file = ensure_demo_keys(system.store, settings.data_dir, system.clock.now())
        if keys_file is not None:
            console.print(f"[green]Demo API keys[/] (one per role) are in [bold]{keys_file}[/]")
    bind_host, bind_port = host or settings.api_host, port or settings.api_port
    console.print(f"waystation on [bold]http://{bind_host}:{bind_port}[/] (Ctrl-C stops it)")
    # uvicorn re-raises the Ctrl-C it stopped for, once everything has stopped.
    with contextlib.suppress(KeyboardInterrupt):
        Server(create_app(system), host=bind_host, port=bind_port).run()


@app.command("sample-city")
def sample_city(
    out: Annotated[Path, typer.Option(help="Directory to write the files to")],
    seed: Annotated[int | None, typer.Option(help="Seed (default from settings)")] = None,
) -> None:
    """Write the generated sample city as GeoJSON and CSV, to show the file formats."""
    from geo.sample_city import generate_sample_city
    from services.station_files import write_sample_city

    settings = Settings()
    city = generate_sample_city(
        seed=settings.sample_seed if seed is None else seed,
        stations=settings.sample_stations,
        subdistricts=settings.sample_subdistricts,
        grid_resolution=settings.grid_resolution,
    )
    for path in write_sample_city(city, out):
        typer.echo(path)


@stations_app.command("import")
def import_stations(
    file: Annotated[Path, typer.Argument(help="GeoJSON (.geojson/.json) or CSV (.csv)")],
    crs: Annotated[Crs, typer.Option(help="Datum of the coordinates in the file")] = Crs.wgs84,
) -> None:
    """Add or update stations from a file; bad rows are listed and the good ones imported."""
    from services.station_files import StationFileError, read_stations
    from store.unit_of_work import Store

    settings = Settings()
    try:
        result = read_stations(file, datum=Datum(crs.value))
    except (StationFileError, OSError) as exc:
        console.print(f"[red]Cannot read {file}:[/] {exc}")
        raise typer.Exit(2) from exc
    store = Store.open(settings.resolved_database_url)
    try:
        with store.transaction() as tx:
            count = tx.stations.upsert_many(result.stations)
    finally:
        store.close()
    console.print(f"Imported {count} stations from {file} ({crs.value} → WGS84).")
    if result.errors:
        table = Table("row", "field", "reason", title=f"{len(result.errors)} rows rejected")
        for error in result.errors:
            table.add_row(str(error.row), error.field, error.reason)
        console.print(table)
        raise typer.Exit(1)


@demand_app.command("import")
def import_demand(
    file: Annotated[Path, typer.Argument(help="CSV: cell,demand_workers,district,subdistrict")],
) -> None:
    """Replace the demand layer (all or nothing). A running system picks it up on its next
    start; PUT /v1/demand replaces it live."""
    from services.station_files import StationFileError, read_demand
    from store.unit_of_work import Store

    settings = Settings()
    try:
        cells = read_demand(file)
        check_demand_cells(cells, settings.grid_resolution)
    except (StationFileError, OSError, ValueError) as exc:
        console.print(f"[red]Cannot import {file}:[/] {exc}")
        raise typer.Exit(2) from exc
    store = Store.open(settings.resolved_database_url)
    try:
        with store.transaction() as tx:
            count = tx.demand.replace(cells)
    finally:
        store.close()
    console.print(f"Demand layer replaced: {count} cells.")


@boundaries_app.command("import")
def import_boundaries(
    file: Annotated[Path, typer.Argument(help="GeoJSON FeatureCollection of (Multi)Polygons")],
    level: Annotated[BoundaryLevel, typer.Option(help="What the outlines are")] = (
        BoundaryLevel.subdistrict
    ),
    name_property: Annotated[str, typer.Option(help="Property holding each name")] = "name",
    parent: Annotated[str | None, typer.Option(help="District the subdistricts belong to")] = None,
    crs: Annotated[Crs, typer.Option(help="Datum of the coordinates in the file")] = Crs.wgs84,
) -> None:
    """Replace the outlines of one level. Subdistricts become the alert zones on next start."""
    from services.station_files import StationFileError, read_boundary_features
    from store.unit_of_work import Store

    settings = Settings()
    try:
        found = read_boundary_features(
            file, level=level, name_property=name_property, parent=parent, datum=Datum(crs.value)
        )
    except (StationFileError, OSError) as exc:
        console.print(f"[red]Cannot import {file}:[/] {exc}")
        raise typer.Exit(2) from exc
    store = Store.open(settings.resolved_database_url)
    try:
        with store.transaction() as tx:
            kept = [b for b in tx.boundaries.list() if b.level is not level]
            tx.boundaries.replace([*kept, *found])
    finally:
        store.close()
    console.print(f"Imported {len(found)} {level.value} outlines ({crs.value} → WGS84).")


@keys_app.command("create")
def create_key(
    role: Annotated[Role, typer.Option(help="What the key may do")],
    label: Annotated[str, typer.Option(help="Who or what holds it")] = "",
    district: Annotated[
        list[str] | None, typer.Option(help="District in scope (repeat); none: all")
    ] = None,
    station: Annotated[
        list[str] | None, typer.Option(help="Station an operator posts for (repeat)")
    ] = None,
    expires_days: Annotated[
        float | None, typer.Option(help="Days until the key expires; none: never")
    ] = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from datetime import UTC, datetime, timedelta

    from services.auth import issue_key
    from store.unit_of_work import Store

    settings = Settings()
    now = datetime.now(UTC)
    store = Store.open(settings.resolved_database_url)
    try:
        issued = issue_key(
            store,
            role=role,
            now=now,
            label=label,
            districts=district or None,
            stations=station or (),
            expires_at=now + timedelta(days=expires_days) if expires_days else None,
        )
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    finally:
        store.close()
    console.print(f"Key {issued.info.key_id} ({role.value}); it is shown only this once:")
    typer.echo(issued.secret)


@keys_app.command("list")
def list_keys() -> None:
    """Every key with its role, scope and status (never the secret)."""
    from datetime import UTC, datetime

    from store.unit_of_work import Store

    settings = Settings()
    store = Store.open(settings.resolved_database_url)
    try:
        with store.transaction() as tx:
            keys = tx.keys.list()
    finally:
        store.close()
    now = datetime.now(UTC)
    table = Table("key_id", "role", "label", "scope", "status", "expires")
    for key in keys:
        scope = ", ".join(key.stations or key.districts or ("all districts",))
        status = "revoked" if key.revoked_at else ("active" if key.active(now) else "expired")
        expires = key.expires_at.isoformat(timespec="minutes") if key.expires_at else ""
        table.add_row(key.key_id, key.role.value, key.label, scope, status, expires)
    Console().print(table)


@keys_app.command("revoke")
def revoke_key(key_id: Annotated[str, typer.Argument(help="The key_id from `keys list`")]) -> None:
    """Revoke a key at once."""
    from datetime import UTC, datetime

    from store.unit_of_work import Store

    settings = Settings()
    store = Store.open(settings.resolved_database_url)
    try:
        with store.transaction() as tx:
            revoked = tx.keys.revoke(key_id, datetime.now(UTC))
    finally:
        store.close()
    if not revoked:
        console.print(f"[red]No active key {key_id}[/]")
        raise typer.Exit(1)
    console.print(f"Key {key_id} revoked.")


@app.command("settings")
def show_settings() -> None:
    """Print every WAYSTATION_* setting with its default and meaning (Markdown table)."""
    typer.echo("| variable | default | meaning |\n|---|---|---|")
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, tuple):
            default = json.dumps([str(item) for item in default], separators=(",", ":"))
        typer.echo(
            f"| `WAYSTATION_{name.upper()}` | `{'(unset)' if default is None else default}` "
            f"| {field.description} |"
        )


@schemas_app.command("export")
def schemas_export(
    out: Annotated[Path | None, typer.Option(help="Directory (default: schemas/json)")] = None,
) -> None:
    """Write the JSON Schema files of the wire formats."""
    for path in export_schemas(out) if out else export_schemas():
        typer.echo(path)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
