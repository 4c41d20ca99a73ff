"""`waystation events`: the admin's commands for events that could not be applied."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.failed_events import clear_failed, list_failed
from store.unit_of_work import Store
from waystation.settings import Settings

events_app = typer.Typer(help="Station events: those that failed, and clearing them.")
DEFAULT_LIST_LIMIT = 100


@events_app.command("failed")
def failed(
    station: Annotated[str | None, typer.Option(help="Only this station's events")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most events to list")] = DEFAULT_LIST_LIMIT,
) -> None:
    """Events archived but not applied (their station carried on without them), with why."""
    settings = Settings()
    store = Store.open(settings.resolved_database_url)
    try:
        found = list_failed(store, settings, station_id=station, limit=limit)
    finally:
        store.close()
    table = Table("event_id", "type", "station", "occurred_at", "reason")
    for event in found:
        table.add_row(
            event.event_id,
            event.type,
            event.station_id,
            event.occurred_at.isoformat(),
            event.reason,
        )
    Console(width=200).print(table)
    typer.echo(f"{len(found)} failed event(s)")


@events_app.command("clear")
def clear(
    event_ids: Annotated[
        list[str] | None, typer.Argument(help="Event ids to clear (none: every failed event)")
    ] = None,
    station: Annotated[str | None, typer.Option(help="Only this station's events")] = None,
) -> None:
    """Set failed events aside as `discarded`: kept in the archive, never applied or listed."""
    settings = Settings()
    store = Store.open(settings.resolved_database_url)
    try:
        cleared = clear_failed(store, event_ids=event_ids or None, station_id=station)
    finally:
        store.close()
    Console(stderr=True).print(f"{cleared.cleared} failed event(s) cleared")
    for event_id in cleared.event_ids:
        typer.echo(event_id)
