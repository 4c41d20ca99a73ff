"""The `waystation` command."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from geo.crs import Datum
from geo.demand import check_demand_cells
from schemas.auth import Role
from schemas.export import export as export_schemas
from schemas.geography import BoundaryLevel
from services.events_cli import events_app
from services.planning_cli import plan_app, report_app
from waystation.settings import Settings

if TYPE_CHECKING:
    from services.system import EmbeddedSystem
    from store.unit_of_work import Store

app = typer.Typer(help="Rest stations for outdoor workers: live coverage, alerts, gap reports.")
stations_app = typer.Typer(help="The station registry.")
demand_app = typer.Typer(help="The demand layer: expected outdoor workers per cell.")
boundaries_app = typer.Typer(help="District and subdistrict outlines.")
keys_app = typer.Typer(help="API keys: create, list, revoke.")
schemas_app = typer.Typer(help="Wire formats.")
db_app = typer.Typer(help="The database schema (Alembic migrations).")
topics_app = typer.Typer(help="Kafka topics of the distributed runtime.")
app.add_typer(stations_app, name="stations")
app.add_typer(schemas_app, name="schemas")
app.add_typer(demand_app, name="demand")
app.add_typer(boundaries_app, name="boundaries")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(topics_app, name="topics")
app.add_typer(events_app, name="events")
app.add_typer(plan_app, name="plan")
app.add_typer(report_app, name="report")
_T = TypeVar("_T")
console = Console(stderr=True)
CLI_ACTOR = "cli"  # who made a registry change from the command line
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
) -> None:
    """Start the API on the store as it is: no sample data, no simulated events (see `demo`).
    Embedded (the default), the processors run here too; with WAYSTATION_BROKER_URL set,
    events go to Kafka and `waystation worker` processes them."""
    from services.system import EmbeddedSystem

    _logging()
    settings = Settings()
    system = EmbeddedSystem(settings, simulate=settings.simulate)
    with system.store.transaction() as tx:
        empty = not tx.stations.count()
    if empty:
        console.print(
            "The store has no stations yet: import yours (`waystation stations import`), "
            "or try the sample city with `waystation demo`."
        )
    _serve(system, settings, host, port)


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings)")] = None,
    simulate: Annotated[
        bool, typer.Option("--simulate/--no-simulate", help="Feed the stations simulated events")
    ] = True,
) -> None:
    """The live sample city: on an empty store, loads the generated city and a demo key per
    role, then serves it while a simulator feeds its stations events. Refuses a store that
    holds real stations, so that nothing simulated lands among them."""
    from services.bootstrap import SAMPLE_CITY_KEY, ensure_sample_city
    from services.demo_keys import ensure_demo_keys
    from services.system import EmbeddedSystem

    _logging()
    settings = Settings()
    system = EmbeddedSystem(settings, simulate=simulate)
    if ensure_sample_city(system.store, settings):
        console.print("[green]First start:[/] loaded the sample city.")
    with system.store.transaction() as tx:
        is_sample = tx.meta.get(SAMPLE_CITY_KEY) is not None
    if not is_sample:
        system.store.close()
        console.print(
            "[red]This store holds real stations:[/] the demo simulates events and only runs "
            f"on an empty store or the sample city's. Use `waystation run`, or point "
            f"WAYSTATION_DATA_DIR elsewhere (now {settings.data_dir})."
        )
        raise typer.Exit(2)
    if settings.demo_keys:
        keys_file = ensure_demo_keys(system.store, settings.data_dir, system.clock.now())
        if keys_file is not None:
            console.print(f"[green]Demo API keys[/] (one per role) are in [bold]{keys_file}[/]")
    _serve(system, settings, host, port)


def _serve(system: EmbeddedSystem, settings: Settings, host: str | None, port: int | None) -> None:
    from services.app import create_app
    from services.server import Server

    bind_host, bind_port = host or settings.api_host, port or settings.api_port
    console.print(f"waystation on [bold]http://{bind_host}:{bind_port}[/] (Ctrl-C stops it)")
    # uvicorn re-raises the Ctrl-C it stopped for, once everything has stopped.
    with contextlib.suppress(KeyboardInterrupt):
        Server(create_app(system), host=bind_host, port=bind_port).run()


@app.command()
def worker() -> None:
    """Run a worker of the distributed runtime (needs WAYSTATION_BROKER_URL): Faust streams
    over the Kafka topics; its web server binds WAYSTATION_WORKER_WEB_HOST (127.0.0.1)."""
    from streams.bounded_worker import BoundedWorker
    from streams.faust_app import build_app

    settings = _distributed_settings()
    BoundedWorker(
        build_app(settings),
        shutdown_deadline_seconds=settings.worker_shutdown_deadline_seconds,
        loglevel="info",
    ).execute_from_commandline()


def _distributed_settings() -> Settings:
    settings = Settings()
    if not settings.distributed:
        console.print("[red]This needs WAYSTATION_BROKER_URL[/] (kafka://host:port)")
        raise typer.Exit(2)
    return settings


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic with its partitions, compaction and retention (existing ones are
    left as they are). Workers never create topics themselves."""
    from kafka.errors import KafkaError

    from services.broker_topics import create_topics

    settings = _distributed_settings()
    try:
        done = create_topics(settings)
    except KafkaError as exc:
        console.print(f"[red]Cannot create the topics:[/] {exc}")
        raise typer.Exit(2) from exc
    table = Table(
        "topic", "partitions", "replicas", "cleanup", "retention (h)", "", title="waystation topics"
    )
    for item in done:
        spec = item.spec
        hours = "" if spec.retention_ms is None else f"{spec.retention_ms / 3_600_000:g}"
        table.add_row(
            spec.name,
            str(spec.partitions),
            str(settings.broker_replication_factor),
            spec.config["cleanup.policy"],
            hours,
            "created" if item.created else "exists",
        )
    console.print(table)


@app.command()
def replay(
    batch: Annotated[int, typer.Option(help="Events produced per broker round trip")] = 500,
) -> None:
    """Re-feed every archived event to the broker, in ingest order, as it was accepted
    (same body, same received time). Workers drop the copies they still remember."""
    from rich.progress import Progress

    from services.kafka_sink import BrokerUnavailableError, KafkaSink
    from store.unit_of_work import Store

    settings = _distributed_settings()
    store = Store.open(settings.resolved_database_url)
    sink = KafkaSink(settings, store)
    sent = 0
    try:
        with store.transaction() as tx:
            total = tx.events.count()
        with Progress(console=console) as progress:
            task = progress.add_task("replaying events", total=total)
            seq = 0
            while True:
                with store.transaction() as tx:
                    page = tx.events.after(seq, limit=batch)
                if not page:
                    break
                sink.submit_archived(page)
                seq = page[-1].seq or seq
                sent += len(page)
                progress.update(task, advance=len(page))
    except BrokerUnavailableError as exc:
        console.print(f"[red]Stopped after {sent} events:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        sink.close()
        store.close()
    console.print(f"Replayed {sent} events.")


@app.command("sample-city")
def sample_city(
    out: Annotated[Path, typer.Option(help="Directory to write the files to")],
    seed: Annotated[int | None, typer.Option(help="Seed (default from settings)")] = None,
) -> None:
    """Write the generated sample city as GeoJSON and CSV, to show the file formats."""
    from demo.sample_city import generate_sample_city
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
    encoding: Annotated[
        str | None,
        typer.Option(help="Text encoding (default: UTF-8, or GBK/GB18030 as Excel saves it)"),
    ] = None,
) -> None:
    """Add or update stations from a file; bad rows are listed and the good ones imported.
    Rows with an address and no lon/lat are geocoded (WAYSTATION_GEOCODER)."""
    from services.geocoding import AddressLocator
    from services.station_files import StationFileError, read_stations
    from services.station_import import refuse_misplaced
    from store.unit_of_work import Store
    from streams.clock import SystemClock

    settings = Settings()
    store = Store.open(settings.resolved_database_url)
    try:
        locator = AddressLocator(store, settings, SystemClock())
        try:
            read = read_stations(
                file, datum=Datum(crs.value), encoding=encoding, locate=locator.locate
            )
        except (StationFileError, OSError) as exc:
            console.print(f"[red]Cannot read {file}:[/] {exc}")
            raise typer.Exit(2) from exc
        with store.transaction(readonly=True) as tx:
            districts = tx.boundaries.list(level=BoundaryLevel.district)
        result = refuse_misplaced(read, districts, coordinates_too=False)
        with store.transaction() as tx, _progress("importing stations", result.stations) as chunks:
            now = datetime.now(UTC)
            changes = [
                change
                for chunk in chunks
                for change in tx.station_changes.write(chunk, actor=CLI_ACTOR, at=now)
            ]
    finally:
        store.close()
    console.print(
        f"Imported {len(result.stations)} stations from {file} ({crs.value} → WGS84): "
        f"{len(changes)} new or changed (a running system applies them on its next tick)."
    )
    if result.errors:
        table = Table("row", "field", "reason", title=f"{len(result.errors)} rows rejected")
        for error in result.errors:
            table.add_row(str(error.row), error.field, error.reason)
        console.print(table)
        raise typer.Exit(1)


@stations_app.command("retire")
def retire_station(
    station_id: Annotated[str, typer.Argument(help="The station to retire")],
) -> None:
    """Take a station out of service for good: it leaves coverage; its history stays."""
    _station_lifecycle(station_id, retire=True)


@stations_app.command("reactivate")
def reactivate_station(
    station_id: Annotated[str, typer.Argument(help="A retired station to bring back")],
) -> None:
    """Bring a retired station back as it was when retired."""
    _station_lifecycle(station_id, retire=False)


def _station_lifecycle(station_id: str, *, retire: bool) -> None:
    from store.unit_of_work import Store

    settings = Settings()
    store = Store.open(settings.resolved_database_url)
    try:
        with store.transaction() as tx:
            log = tx.station_changes
            write = log.retire if retire else log.reactivate
            _, change = write(station_id, actor=CLI_ACTOR, at=datetime.now(UTC))
    except KeyError as exc:
        state = "active" if retire else "retired"
        console.print(f"[red]No {state} station {station_id!r}.[/]")
        raise typer.Exit(1) from exc
    finally:
        store.close()
    console.print(f"Station {station_id} {change.action.value} (version {change.version}).")


class PosterFormat(StrEnum):
    png = "png"
    pdf = "pdf"


@stations_app.command("poster")
def station_posters(
    station_ids: Annotated[list[str] | None, typer.Argument(help="Stations (none: --all)")] = None,
    every: Annotated[bool, typer.Option("--all", help="A poster for every station")] = False,
    out: Annotated[Path, typer.Option(help="Directory to write the posters to")] = Path("posters"),
    formats: Annotated[list[PosterFormat] | None, typer.Option("--format")] = None,
) -> None:
    """Print-ready QR posters (A4, Chinese) whose link lets workers check in themselves."""
    from services.privacy import worker_ref_secret
    from services.scan_poster import poster_pdf, poster_png
    from services.scan_tokens import TokenSigner, current_token, scan_secret, scan_url
    from store.unit_of_work import Store

    if not station_ids and not every:
        console.print("[red]Name stations, or pass --all.[/]")
        raise typer.Exit(2)
    settings = Settings()
    signer = TokenSigner(scan_secret(settings, worker_ref_secret(settings)))
    store = Store.open(settings.resolved_database_url)
    render = {PosterFormat.png: poster_png, PosterFormat.pdf: poster_pdf}
    missing: list[str] = []
    try:
        with store.transaction(readonly=True) as tx:
            if every:
                stations = tx.stations.list()
            else:
                found = [(sid, tx.stations.get(sid)) for sid in station_ids or []]
                missing = [sid for sid, station in found if station is None]
                stations = [station for _, station in found if station is not None]
        out.mkdir(parents=True, exist_ok=True)
        for station in stations:
            url = scan_url(settings, current_token(store, signer, station.station_id))
            for fmt in formats or list(PosterFormat):
                path = out / f"{station.station_id}.{fmt.value}"
                path.write_bytes(render[fmt](station, url))
    finally:
        store.close()
    console.print(f"Wrote posters of {len(stations)} stations to {out}.")
    if missing:
        console.print(f"[red]No such station:[/] {', '.join(missing)}")
        raise typer.Exit(1)


@stations_app.command("revoke-posters")
def revoke_posters(station_id: Annotated[str, typer.Argument(help="The station")]) -> None:
    """Revoke every printed poster of a station (one was photographed); print new ones."""
    from services.privacy import worker_ref_secret
    from services.scan_tokens import TokenSigner, rotate_token, scan_secret, scan_url
    from store.unit_of_work import Store

    settings = Settings()
    signer = TokenSigner(scan_secret(settings, worker_ref_secret(settings)))
    store = Store.open(settings.resolved_database_url)
    try:
        with store.transaction(readonly=True) as tx:
            exists = tx.stations.get(station_id) is not None
        if not exists:
            console.print(f"[red]No such station:[/] {station_id}")
            raise typer.Exit(1)
        url = scan_url(settings, rotate_token(store, signer, station_id, datetime.now(UTC)))
    finally:
        store.close()
    console.print(f"Old posters of {station_id} revoked; the new link is {url}")


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
        with store.transaction() as tx, _progress("importing demand cells", cells) as chunks:
            count = tx.demand.replace(cell for chunk in chunks for cell in chunk)
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
        with store.transaction() as tx, _progress("importing outlines", found) as chunks:
            count = tx.boundaries.replace_level(level, [b for chunk in chunks for b in chunk])
    finally:
        store.close()
    console.print(
        f"Imported {count} {level.value} outlines as multipolygons into {level.value}s "
        f"({crs.value} → WGS84)."
    )


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Migrate the database up (the store also does this whenever it opens). A database made
    by a version before migrations is adopted, its data kept."""
    from store.admin import upgrade_database

    settings = Settings()
    now = upgrade_database(settings.resolved_database_url, revision)
    console.print(f"Database at revision {now}.")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help='Target revision, e.g. 0002, or "base"')],
) -> None:
    """Migrate the database down to an earlier revision ("base" removes every table)."""
    from store.admin import downgrade_database

    settings = Settings()
    now = downgrade_database(settings.resolved_database_url, revision)
    console.print(f"Database at revision {now or 'base'}.")


@db_app.command("current")
def db_current() -> None:
    """Print the revision the database is at."""
    from store.admin import database_revision

    typer.echo(database_revision(Settings().resolved_database_url) or "base")


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
        unknown = sorted(set(district or ()) - _known_districts(store))
        if unknown:
            known = ", ".join(sorted(_known_districts(store))) or "none yet"
            console.print(f"[red]Unknown district {', '.join(unknown)}[/]; known: {known}")
            raise typer.Exit(2)
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


IMPORT_CHUNK = 500  # rows written between two steps of an import's progress bar


@contextlib.contextmanager
def _progress(what: str, items: Sequence[_T]) -> Iterator[Iterator[list[_T]]]:
    """Chunks of `items`, with a progress bar (like replay's) advancing as each is taken."""
    from rich.progress import Progress

    with Progress(console=console, transient=False) as progress:
        task = progress.add_task(what, total=len(items))

        def chunks() -> Iterator[list[_T]]:
            for start in range(0, len(items), IMPORT_CHUNK):
                chunk = list(items[start : start + IMPORT_CHUNK])
                yield chunk
                progress.update(task, advance=len(chunk))

        yield chunks()


def _known_districts(store: Store) -> set[str]:
    """Districts the store knows: of its stations, outlines and demand layer."""
    with store.transaction(readonly=True) as tx:
        names = set(tx.stations.districts())
        names |= {b.name for b in tx.boundaries.list() if b.level is BoundaryLevel.district}
        names |= {cell.district for cell in tx.demand.load()}
    return names


def settings_problems(exc: ValidationError) -> list[str]:
    """One readable line per bad WAYSTATION_* value."""
    prefix = Settings.model_config.get("env_prefix", "")
    lines = []
    for error in exc.errors():
        name = prefix + "_".join(str(part) for part in error["loc"]).upper()
        lines.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
    return lines


def main() -> None:
    try:
        app()
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        for line in settings_problems(exc):
            typer.echo(line, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
