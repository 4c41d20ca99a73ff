"""Running the system: liveness and Prometheus metrics (no key needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily

from schemas.api import Health
from services.routes.deps import SystemDep
from services.station_tally import take_tally
from services.system import EmbeddedSystem
from streams.embedded import ProcessorBusyError

router = APIRouter(tags=["system"])


class LiveGauges:
    """Gauges read from the live state at scrape time, so they are never stale."""

    def __init__(self, system: EmbeddedSystem) -> None:
        self.system = system

    def collect(self) -> Any:
        if not self.system.started:
            return
        depth = GaugeMetricFamily("waystation_queue_depth", "Events waiting to be processed")
        depth.add_metric([], self.system.runtime.queue_depth)
        try:
            tally = take_tally(
                self.system.runtime, self.system.settings.health_read_timeout_seconds
            )
        except ProcessorBusyError:  # a scrape does not queue behind the processor
            yield depth
            return
        by_state = tally.stations_by_state()
        by_kind = tally.open_alerts_by_kind()
        stations = GaugeMetricFamily(
            "waystation_stations", "Stations by effective state", labels=["state"]
        )
        for state, count in by_state.items():
            stations.add_metric([state.value], count)
        alerts = GaugeMetricFamily("waystation_open_alerts", "Open alerts by kind", labels=["kind"])
        for kind, count in by_kind.items():
            alerts.add_metric([kind.value], count)
        yield from (stations, alerts, depth)


@router.get("/healthz", response_model=Health)
def healthz(system: SystemDep) -> Health:
    return system.health()


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    body = generate_latest(REGISTRY) + generate_latest(request.app.state.gauges)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
