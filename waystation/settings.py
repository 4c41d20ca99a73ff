"""The one settings object. Every threshold, radius and interval lives here with its unit in
its name, and is read from a `WAYSTATION_*` environment variable."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import DEFAULT_EARLIEST_OCCURRED_AT, DEFAULT_MAX_FUTURE_SKEW
from schemas.stations import Amenity


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAYSTATION_", frozen=True, extra="ignore")

    # Where things live
    data_dir: Path = Field(Path("var"), description="Directory for the SQLite store and secrets")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; unset means SQLite at data_dir/waystation.db"
    )
    api_host: str = Field("127.0.0.1", description="Address the HTTP API binds")
    api_port: int = Field(8000, ge=1, le=65535, description="Port the HTTP API binds")
    timezone: str = Field("Asia/Shanghai", description="The district's time zone (visits today)")

    worker_ref_secret: SecretStr | None = Field(
        None,
        description="Key for hashing worker_ref; unset means one is made and kept in data_dir",
    )

    # Catchments and grid
    catchment_minutes: float = Field(15.0, gt=0, description="Travel time a worker will accept")
    walk_speed_kmh: float = Field(5.0, gt=0, description="Walking speed")
    walk_detour_factor: float = Field(
        1.25, ge=1.0, description="Street distance over straight-line distance, walking"
    )
    travel_mode: Literal["walk", "ebike"] = Field(
        "walk", description="How workers reach a station: on foot, or by e-bike"
    )
    ebike_speed_kmh: float = Field(15.0, gt=0, description="E-bike riding speed")
    ebike_detour_factor: float = Field(
        1.3, ge=1.0, description="Street distance over straight-line distance, by e-bike"
    )
    catchment_model: Literal["circle", "network"] = Field(
        "circle", description="Geodesic circles, or reach along a street network"
    )
    street_network_file: Path | None = Field(
        None, description="GeoJSON LineStrings of walkable/rideable streets (network model)"
    )
    network_max_snap_m: float = Field(
        300.0, gt=0, description="A station farther than this from any street is off-network"
    )
    grid_resolution: int = Field(9, ge=5, le=12, description="H3 resolution of coverage cells")
    zone_resolution: int = Field(7, ge=3, le=10, description="H3 resolution of alert zones")
    zone_scheme: Literal["auto", "h3", "subdistrict"] = Field(
        "auto",
        description="Alert zones: subdistrict polygons when loaded (auto), or always H3 parents",
    )

    # Station lifecycle
    heartbeat_interval_seconds: int = Field(
        300, gt=0, description="Expected health-check interval when a station does not say"
    )
    silence_missed_heartbeats: float = Field(
        2.0, gt=0, description="Missed heartbeat intervals before a station counts as silent"
    )
    critical_amenities: tuple[Amenity, ...] = Field(
        (Amenity.drinking_water, Amenity.rest_seats),
        description="Amenities whose outage makes an open station degraded",
    )
    degraded_coverage_weight: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="What a degraded station counts toward coverage; a cell is covered at 1.0",
    )
    allowed_lateness_minutes: float = Field(
        60.0, ge=0, description="Older events are archived but not applied"
    )
    max_future_skew_minutes: float = Field(
        DEFAULT_MAX_FUTURE_SKEW.total_seconds() / 60,
        ge=0,
        description="Events further in the future are rejected",
    )
    earliest_occurred_at: AwareDatetime = Field(
        DEFAULT_EARLIEST_OCCURRED_AT,
        description="Events that occurred before this are rejected (clocks reset to 1970, typos)",
    )

    # Underserved zones and alerts
    min_cell_demand_workers: float = Field(
        1.0, ge=0, description="A cell with less demand never counts as underserved"
    )
    min_access_seats_per_worker: float = Field(
        0.0,
        ge=0,
        description="2SFCA target: a covered cell with less access is underserved (0 = off)",
    )
    zone_uncovered_demand_workers: float = Field(
        40.0, gt=0, description="Uncovered demand at which a zone is underserved"
    )
    zone_resolve_ratio: float = Field(
        0.8, gt=0, le=1.0, description="Hysteresis: a zone clears below threshold x ratio"
    )
    overload_window_minutes: float = Field(
        60.0, gt=0, description="Trailing window over which visits are counted for overload"
    )
    overload_visits_per_seat: float = Field(
        4.0, gt=0, description="Visitors per seat within the window above which it is overloaded"
    )
    alert_open_grace_minutes: float = Field(
        5.0, ge=0, description="A condition must hold this long before its alert opens"
    )
    alert_resolve_grace_minutes: float = Field(
        5.0, ge=0, description="A condition must stay clear this long before its alert resolves"
    )

    # Coverage history
    history_interval_minutes: float = Field(
        5.0, gt=0, description="One history point per district and subdistrict this often"
    )
    history_fine_hours: float = Field(
        48.0, gt=0, description="History points older than this are folded into hourly ones"
    )
    history_retention_days: float = Field(
        400.0, gt=0, description="History older than this is deleted"
    )

    # Alert webhooks
    webhook_timeout_seconds: float = Field(
        5.0, gt=0, description="A webhook receiver must answer within this"
    )
    webhook_max_attempts: int = Field(
        8, ge=1, description="Attempts per delivery before it is logged as failed"
    )
    webhook_backoff_seconds: float = Field(
        2.0, gt=0, description="Wait before the first retry; doubles after each failure"
    )
    webhook_backoff_max_seconds: float = Field(
        600.0, gt=0, description="The longest wait between two attempts"
    )
    webhook_poll_seconds: float = Field(
        1.0, gt=0, description="How often due retries are looked for"
    )
    webhook_escalation_ratio: float = Field(
        1.5,
        gt=1.0,
        description="An open zone alert is escalated when its uncovered demand reaches this "
        "multiple of what was last sent",
    )

    # Ingest limits
    batch_max_events: int = Field(1000, ge=1, description="Most events in one POST")
    body_max_bytes: int = Field(2_000_000, ge=1024, description="Largest request body accepted")
    import_max_items: int = Field(
        50_000, ge=1, description="Most stations or outlines in one import request"
    )
    import_body_max_bytes: int = Field(
        50_000_000, ge=1024, description="Largest station, boundary or demand import accepted"
    )
    json_max_depth_levels: int = Field(
        32,
        ge=4,
        le=200,  # far below the interpreter's recursion limit, which deeper JSON would hit
        description="Deepest nesting of arrays and objects accepted in a JSON body",
    )

    # Access
    rate_limit_per_minute: int = Field(
        1200, ge=1, description="Requests one API key may make per minute before 429"
    )
    rate_limit_burst: int = Field(
        200, ge=1, description="Requests one API key may make at once above its steady rate"
    )
    auth_key_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long the server trusts what it read of an API key (a key revoked from "
        "the CLI stops working within this time; 0 reads the key on every request)",
    )
    auth_failures_per_minute: int = Field(
        30, ge=1, description="Failed authentications one client address may make per minute"
    )
    auth_failures_burst: int = Field(
        10, ge=1, description="Failed authentications one client address may make at once"
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, description="A request still running after this is answered 503"
    )
    cors_origins: tuple[str, ...] = Field(
        (), description="Origins allowed to call the API from a browser (none: CORS off)"
    )
    api_docs: bool = Field(
        True,
        description="Serve the interactive API docs at /docs (from vendored files, no CDN); "
        "the OpenAPI document at /openapi.json is served either way",
    )
    demo_keys: bool = Field(
        True, description="`waystation demo` creates a demo key per role on first start"
    )

    # Worker self check-in (QR posters)
    public_base_url: str | None = Field(
        None,
        description="Address workers' phones reach waystation at, printed in QR posters (unset: "
        "http://api_host:api_port)",
    )
    scan_token_secret: SecretStr | None = Field(
        None,
        description="Key signing QR poster links; unset means one derived from the worker_ref "
        "key in data_dir",
    )
    scan_device_per_hour: float = Field(
        6.0, gt=0, description="Visits one phone may record by QR scan per hour, steadily"
    )
    scan_device_burst: int = Field(
        3, ge=1, description="Visits one phone may record by QR scan at once"
    )
    scan_station_per_minute: float = Field(
        30.0, gt=0, description="QR-scan visits one station may record per minute, steadily"
    )
    ingest_station_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How often ingest looks at the station registry's change log for changes "
        "made elsewhere (a station retired from the CLI is refused within this time; changes "
        "through this server apply at once)",
    )
    scan_station_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a scan trusts what it read of a station and its poster generation "
        "(a rotation through this server applies at once; from the CLI, within this time)",
    )
    scan_station_burst: int = Field(
        60, ge=1, description="QR-scan visits one station may record at once (a queue at the door)"
    )

    # Dashboard
    basemap_tile_url: str | None = Field(
        None,
        description="Map tiles for the dashboard, e.g. https://tiles.example/{z}/{x}/{y}.png "
        "(unset: boundaries, cells and stations on a plain background)",
    )
    basemap_attribution: str = Field("", description="Credit shown for the basemap tiles")
    live_queue_max_messages: int = Field(
        256, ge=1, description="Updates held for one slow dashboard before it is told to resync"
    )
    live_keepalive_seconds: float = Field(
        15.0, gt=0, description="Idle dashboard streams get a keep-alive comment this often"
    )
    live_max_cells_per_update: int = Field(
        50_000, ge=1, description="A live update touching more cells tells dashboards to resync"
    )
    live_visits_refresh_seconds: float = Field(
        5.0, gt=0, description="Visits today are recounted for live dashboards at most this often"
    )

    # Embedded runtime
    tick_interval_seconds: float = Field(
        5.0, gt=0, description="How often the clock re-evaluates silence and grace periods"
    )
    gc_young_threshold_objects: int = Field(
        20_000,
        ge=1,
        description="Objects allocated between the garbage collector's young-generation passes "
        "in the embedded runtime (Python's default, 700, cost the event path a tenth of its time)",
    )
    visit_rollups_in_own_process: bool = Field(
        True,
        description="Count visits into the daily rollups in a process of its own beside the "
        "server, so that they take no time from the event path (a store held in memory is "
        "counted in a thread)",
    )
    max_unapplied_events: int = Field(
        100_000,
        ge=1,
        description="Events acknowledged but not yet applied, at most; posts beyond it get 503 "
        "with Retry-After and nothing of them is stored",
    )
    backlog_retry_after_seconds: int = Field(
        2, ge=1, description="Retry-After sent with a 503 when the backlog is full"
    )
    health_read_timeout_seconds: float = Field(
        0.5,
        gt=0,
        description="/healthz waits at most this long for the processor to let it read the "
        "live counts; longer, it answers without them",
    )
    lagging_after_seconds: float = Field(
        5.0, gt=0, description="/healthz says lagging when the oldest unapplied event is older"
    )
    commit_wait_seconds: float = Field(
        10.0,
        gt=0,
        description="How long a post waits for its turn to be committed before it is answered "
        "503 with nothing stored (keep it below request_timeout_seconds)",
    )
    request_store_margin_seconds: float = Field(
        2.0,
        ge=0,
        description="A request stores nothing in its last this many seconds before "
        "request_timeout_seconds, so a request answered as timed out stored nothing",
    )
    group_commit_max_events: int = Field(
        20_000, ge=1, description="Most events committed in one transaction (one fsync)"
    )
    processor_batch_max_events: int = Field(
        2000, ge=1, description="Most events the processor applies and saves in one transaction"
    )
    coverage_snapshot_coalesce_seconds: float = Field(
        2.0,
        ge=0,
        description="The planners' coverage snapshot gathers changes this long before writing",
    )
    simulate: bool = Field(
        False, description="Feed simulated station events (`waystation demo` always does)"
    )
    sample_seed: int = Field(7, description="Seed of the generated sample city")
    sample_stations: int = Field(2000, ge=1, description="Stations in the generated sample city")
    sample_subdistricts: int = Field(40, ge=1, description="Subdistricts in the sample city")

    # Distributed runtime (Kafka + Faust)
    broker_url: str | None = Field(
        None,
        description="Kafka bootstrap servers (kafka://host:port,...); unset means the embedded "
        "runtime",
    )
    broker_partitions: int = Field(
        4, ge=1, description="Partitions of each waystation topic (workers share them out)"
    )
    broker_replication_factor: int = Field(
        1, ge=1, description="Replicas of each topic made by `waystation topics create`"
    )
    broker_event_retention_hours: float = Field(
        168.0, gt=0, description="How long event, clock and alert topics keep messages"
    )
    broker_dead_letter_retention_hours: float = Field(
        720.0, gt=0, description="How long the dead-letter topic keeps what could not be processed"
    )
    broker_ack_timeout_seconds: float = Field(
        10.0, gt=0, description="How long the API waits for the broker's acknowledgement"
    )
    broker_retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After sent with a 503 when the broker cannot be reached"
    )
    broker_session_timeout_seconds: float = Field(
        10.0, gt=0, description="Consumer-group session timeout of a worker"
    )
    worker_app_id: str = Field(
        "waystation", description="Faust application id: consumer group and table topic prefix"
    )
    worker_clock: Literal["wall", "topic"] = Field(
        "wall",
        description="Worker clock: tick every tick_interval_seconds (wall), or only on ticks "
        "published to the clock topic (topic: tests and replays)",
    )
    worker_commit_interval_seconds: float = Field(
        2.8, gt=0, description="How often a worker commits the offsets it has processed"
    )
    worker_stall_check_seconds: float = Field(
        2.0,
        gt=0,
        description="How often a worker looks for partitions whose fetched messages never "
        "reached a stream (it reads them again after two such checks in a row)",
    )
    worker_fetch_max_wait_ms: int = Field(
        1500, ge=1, description="Longest a worker's fetch waits on a partition with nothing new"
    )
    worker_shutdown_deadline_seconds: float = Field(
        20.0,
        gt=0,
        description="Longest a worker takes to stop after SIGTERM or SIGINT before it exits "
        "regardless (its uncommitted offsets are read again): under a container runtime's grace",
    )
    worker_web_host: str = Field("127.0.0.1", description="Address a worker's web server binds")
    worker_web_port: int = Field(6066, ge=1, le=65535, description="Port of a worker's web server")
    worker_sink_batch_max_messages: int = Field(
        500, ge=1, description="Most messages the store writer saves in one transaction"
    )
    worker_sink_batch_wait_seconds: float = Field(
        0.2, gt=0, description="Longest the store writer waits to fill a batch"
    )
    worker_batch_max_events: int = Field(
        8000,
        ge=1,
        description="Most messages a station or zone stage takes off its topics in one batch "
        "(its table slots are written once per batch, its output sent together)",
    )
    worker_batch_wait_seconds: float = Field(
        0.2,
        gt=0,
        description="Longest a station or zone stage waits to fill a batch (each batch waits "
        "once on the broker and the store: on a backlog, 0.02 s gave batches of 600 and a fifth "
        "less throughput than 0.2 s, 0.1 s a tenth less; 0.5 s waited more than it saved)",
    )
    worker_producer_linger_ms: int = Field(
        5, ge=0, description="How long a worker's producer waits to fill a produce request"
    )
    worker_producer_batch_max_bytes: int = Field(
        262_144, ge=1024, description="Largest produce batch per partition a worker sends"
    )
    worker_gc_middle_passes_per_full: int = Field(
        100,
        ge=1,
        description="Middle-generation garbage-collector passes between full passes in a worker "
        "(Python's default, 10, had full passes walk every table slot: a sixth of its time)",
    )

    # Planning: siting suggestions, what-if scenarios, report downloads
    siting_max_sites: int = Field(
        200, ge=1, description="Most new stations one siting request may ask for (k)"
    )
    siting_max_candidates: int = Field(
        50_000, ge=1, description="Most candidate sites one siting request may bring"
    )
    siting_exact_max_candidates: int = Field(
        400, ge=1, description="Largest candidate list the exact (integer programming) path takes"
    )
    siting_swap_passes: int = Field(
        3, ge=0, description="Interchange passes after the greedy siting (0: greedy only)"
    )
    siting_perturbation_rounds: int = Field(
        10, ge=0, description="Local-search rounds after the interchange (drop two, refill)"
    )
    siting_access_target_seats_per_worker: float = Field(
        0.05,
        gt=0,
        description="Access objective: a cell's 2SFCA access counts up to this, no further",
    )
    geocoder: Literal["none", "nominatim", "baidu", "amap"] = Field(
        "none",
        description="Geocoder for addresses in candidate lists: Nominatim (WGS84), Baidu "
        "(answers BD-09) or Amap (answers GCJ-02); answers are converted to WGS84",
    )
    geocoder_url: str | None = Field(
        None,
        description="The geocoder's base URL, e.g. a self-hosted Nominatim "
        "(unset: the service's public endpoint)",
    )
    geocoder_api_key: SecretStr | None = Field(None, description="Key for Baidu or Amap")
    geocoder_user_agent: str = Field("waystation", description="Sent to Nominatim, as it asks")
    geocoder_min_delay_seconds: float = Field(
        1.0, ge=0, description="Pause between two geocoder requests (Nominatim allows 1 per s)"
    )
    geocoder_timeout_seconds: float = Field(10.0, gt=0, description="Per geocoder request")
    report_link_ttl_seconds: int = Field(
        300, ge=1, description="How long a signed report download link works"
    )

    @property
    def travel_speed_kmh(self) -> float:
        return self.ebike_speed_kmh if self.travel_mode == "ebike" else self.walk_speed_kmh

    @property
    def detour_factor(self) -> float:
        return self.ebike_detour_factor if self.travel_mode == "ebike" else self.walk_detour_factor

    @property
    def catchment_radius_m(self) -> float:
        """Straight-line reach: speed x time / detour (walking 5 km/h for 15 min with detour
        1.25 gives the unions' "1 km, 15 minutes on foot")."""
        return self.travel_speed_kmh * 1000.0 * (self.catchment_minutes / 60.0) / self.detour_factor

    @property
    def public_url(self) -> str:
        return (self.public_base_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def distributed(self) -> bool:
        return bool(self.broker_url)

    @property
    def bootstrap_servers(self) -> list[str]:
        """broker_url as host:port items, without Faust's kafka:// scheme."""
        text = (self.broker_url or "").replace("kafka://", "")
        return [item.strip() for item in text.split(",") if item.strip()]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'waystation.db'}"
