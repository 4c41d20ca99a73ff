"""People acting on alerts (acknowledge, assign, note; scoped to the key's district) and
webhooks telling a district's receivers of each alert transition, signed, retried with
backoff, without ever holding up processing. The receiver is a real HTTP server on
127.0.0.1; the page's acknowledge button is clicked in chromium."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from bench.browser import VIEWPORT
from demo.sample_city import DISTRICT_NAME, SampleCity
from schemas.auth import Role
from services.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from streams.clock import ManualClock
from tests.conftest import T0, LiveServer, bearer, issue
from tests.served_city import (
    CLOSED,
    DEGRADED,
    LEFT_SILENT,
    alerting_settings,
    envelope,
    opened_sample_city,
    post,
)
from tests.test_dashboard_browser import sign_in

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WAIT_S = 15.0
POLL_S = 0.05
BACKOFF_S = 30.0
FAILURES_BEFORE_RECOVERY = 2
ROBOT_TOOK_IT = json.dumps({"errcode": 0, "errmsg": "ok"}).encode()


@dataclass
class Receiver:
    """A local webhook receiver: records every request; fails while `failing` is set. It
    answers as a group robot does when it took a message (our JSON receivers' body is not
    read), since a robot's HTTP 200 alone does not say it did."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    failing: threading.Event = field(default_factory=threading.Event)
    refused: int = 0

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            me = state["receiver"]
            if me.failing.is_set():
                me.refused += 1
                self.send_response(503)
                self.end_headers()
                return
            me.received.append((dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(ROBOT_TOOK_IT)))
            self.end_headers()
            self.wfile.write(ROBOT_TOOK_IT)

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["receiver"]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class City:
    live: LiveServer
    city: SampleCity
    clock: ManualClock

    def post(self, events: list[dict[str, Any]]) -> None:
        post(self.live, events)

    def open_station(self, offset: int) -> str:
        return self.city.stations[LEFT_SILENT + CLOSED + DEGRADED + offset].station_id


@pytest.fixture
def city(tmp_path: Path) -> Iterator[City]:
    settings = alerting_settings(
        tmp_path,
        zone_uncovered_demand_workers=10.0,
        zone_scheme="h3",
        webhook_backoff_seconds=BACKOFF_S,
        webhook_poll_seconds=POLL_S,
    )
    with opened_sample_city(settings, T0) as served:
        yield City(served.live, served.city, served.clock)


def open_alerts(live: LiveServer, kind: str | None = None) -> list[dict[str, Any]]:
    params = {"status": "open", "limit": 1000} | ({"kind": kind} if kind else {})
    return live.client.get("/v1/alerts", params=params).json()["alerts"]


def water(clock: ManualClock, station_id: str, state: str) -> dict[str, Any]:
    return envelope(
        "health_check",
        station_id,
        clock.now(),
        {"amenities": {"drinking_water": state, "rest_seats": "ok"}, "next_check_in_seconds": 3600},
    )


def wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


# --- acting on alerts ------------------------------------------------------------------------


def test_acknowledge_assign_and_note_say_who_and_when_and_keep_the_alert_open(city: City) -> None:
    live = city.live
    union = bearer(issue(live.system, Role.union, districts=[DISTRICT_NAME]))
    alert = open_alerts(live, "station_degraded")[0]
    base = f"/v1/alerts/{alert['alert_id']}"

    acked = live.client.post(f"{base}/acknowledge", json={"note": "已派人查看"}, headers=union)
    assert acked.status_code == 200, acked.text
    handling = acked.json()["handling"]
    assert handling["acknowledged_at"] == T0.isoformat().replace("+00:00", "Z")
    assert handling["acknowledged_by"]
    assert handling["notes"] == 1
    again = live.client.post(f"{base}/acknowledge", headers=union)
    assert again.status_code == 200
    assert len(again.json()["actions"]) == 1, "a retried acknowledgement adds nothing"

    city.clock.advance(timedelta(minutes=3))
    assigned = live.client.post(f"{base}/assign", json={"assignee": "朝阳区总工会"}, headers=union)
    assert assigned.json()["handling"]["assignee"] == "朝阳区总工会"
    noted = live.client.post(f"{base}/notes", json={"text": "水已修好"}, headers=union)
    actions = noted.json()["actions"]
    assert [a["action"] for a in actions] == ["acknowledged", "assigned", "noted"]
    assert actions[-1]["at"] > actions[0]["at"]
    assert {a["by_key_id"] for a in actions} == {union["Authorization"].split("_")[1]}
    assert noted.json()["handling"]["notes"] == 2

    # Acknowledged is not resolved: the alert stays open, and counts as open everywhere.
    assert alert["alert_id"] in {a["alert_id"] for a in open_alerts(live)}
    snapshot = live.client.get("/v1/map").json()
    assert snapshot["alert_handling"][alert["alert_id"]]["assignee"] == "朝阳区总工会"
    read = live.client.get(f"{base}/actions", headers=union).json()
    assert read == noted.json()


def test_actions_are_for_union_and_admin_keys_within_their_districts(city: City) -> None:
    live = city.live
    alert_id = open_alerts(live, "station_degraded")[0]["alert_id"]
    url = f"/v1/alerts/{alert_id}/acknowledge"
    elsewhere = bearer(issue(live.system, Role.union, districts=["Elsewhere"]))
    planner = bearer(issue(live.system, Role.planner))
    assert live.client.post(url, headers=elsewhere).status_code == 403
    assert live.client.post(url, headers=planner).status_code == 403
    assert live.client.post(url).status_code == 200  # the client's own key is an admin's

    missing = live.client.post("/v1/alerts/no-such-alert/acknowledge")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    empty = live.client.post(f"/v1/alerts/{alert_id}/assign", json={"assignee": ""})
    assert empty.status_code == 422
    assert any("assignee" in e["field"] for e in empty.json()["errors"])


def test_a_resolved_alert_cannot_be_acknowledged(city: City) -> None:
    live = city.live
    degraded = city.city.stations[LEFT_SILENT + CLOSED]  # lost its water in events_for
    alert = next(a for a in open_alerts(live) if a["subject"] == degraded.station_id)
    city.clock.advance(timedelta(minutes=1))
    city.post([water(city.clock, degraded.station_id, "ok")])
    answer = live.client.post(f"/v1/alerts/{alert['alert_id']}/acknowledge")
    assert answer.status_code == 409
    assert "resolved" in answer.json()["detail"]


# --- webhooks --------------------------------------------------------------------------------


def register(live: LiveServer, receiver: Receiver, flavour: str = "json") -> dict[str, Any]:
    # Transitions still queued from before would reach the new webhook too.
    assert live.system.webhooks.caught_up(WAIT_S)
    answer = live.client.post(
        "/v1/webhooks", json={"district": DISTRICT_NAME, "url": receiver.url, "flavour": flavour}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def signed(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = hmac.new(
        secret.encode(), headers[TIMESTAMP_HEADER].encode() + b"." + body, hashlib.sha256
    )
    return hmac.compare_digest(headers[SIGNATURE_HEADER], "sha256=" + expected.hexdigest())


def test_each_transition_reaches_the_receiver_once_signed(city: City, receiver: Receiver) -> None:
    hook = register(city.live, receiver)
    station = city.open_station(0)
    city.clock.advance(timedelta(minutes=1))
    city.post([water(city.clock, station, "out_of_service")])
    city.clock.advance(timedelta(minutes=1))
    city.post([water(city.clock, station, "ok")])
    mine = lambda: [b for b in receiver.bodies() if b["alert"]["subject"] == station]  # noqa: E731
    wait_for(lambda: len(mine()) >= 2, "opened and resolved")
    time.sleep(POLL_S * 10)  # anything more would arrive now
    assert [b["event"] for b in mine()] == ["alert.opened", "alert.resolved"]
    assert all(signed(hook["secret"], h, body) for h, body in receiver.received)
    assert not signed("another secret", *receiver.received[0])
    assert "驿站设施故障" in mine()[0]["text"]
    deliveries = city.live.client.get(f"/v1/webhooks/{hook['webhook_id']}/deliveries").json()
    assert {d["status"] for d in deliveries["deliveries"]} == {"delivered"}


def test_a_zone_alert_whose_gap_grows_is_escalated(city: City, receiver: Receiver) -> None:
    register(city.live, receiver)
    live = city.live
    before = {a["alert_id"] for a in open_alerts(live, "zone_underserved")}
    # Close stations one by one until a zone alert opens, then more in the same zone.
    opened = [city.open_station(n) for n in range(40)]
    zone_alert = None
    for station in opened:
        city.clock.advance(timedelta(minutes=1))
        city.post([envelope("check_in", station, city.clock.now(), {"status": "closed"})])
        now_open = [a for a in open_alerts(live, "zone_underserved") if a["alert_id"] not in before]
        if zone_alert is None and now_open:
            zone_alert = now_open[0]
    assert zone_alert is not None
    ratio = live.system.settings.webhook_escalation_ratio
    told: dict[str, list[tuple[str, float]]] = {}

    def escalated_after_opening() -> bool:
        told.clear()
        for body in receiver.bodies():
            alert = body["alert"]
            demand = alert["evidence"]["uncovered_demand_workers"]
            told.setdefault(alert["alert_id"], []).append((body["event"], demand))
        return any(
            steps[0][0] == "alert.opened" and any(e == "alert.escalated" for e, _ in steps)
            for steps in told.values()
        )

    wait_for(escalated_after_opening, "an escalation of an alert opened while watched")
    for steps in told.values():
        if steps[0][0] != "alert.opened":
            continue  # opened before the webhook existed
        for (_, last), (event, demand) in pairwise(steps):
            if event == "alert.escalated":
                assert demand >= last * ratio
                assert demand > last


def test_a_failing_receiver_neither_blocks_nor_loses_processing(
    city: City, receiver: Receiver
) -> None:
    hook = register(city.live, receiver, flavour="wecom")
    receiver.failing.set()
    stations = [city.open_station(n) for n in range(3)]
    started = time.monotonic()
    city.clock.advance(timedelta(minutes=1))  # one instant: no retry falls due meanwhile
    for station in stations:
        city.post([water(city.clock, station, "out_of_service")])
    processing_s = time.monotonic() - started
    # Processing went on: every station is degraded, every alert open, while deliveries fail.
    states = city.live.client.get("/v1/stations", params={"state": "degraded"}).json()
    assert set(stations) <= {v["station"]["station_id"] for v in states["stations"]}
    assert processing_s < city.live.system.settings.webhook_timeout_seconds
    url = f"/v1/webhooks/{hook['webhook_id']}/deliveries"

    def log() -> list[dict[str, Any]]:
        return city.live.client.get(url).json()["deliveries"]

    time.sleep(POLL_S * 20)  # the dispatcher has taken in what processing queued
    wait_for(lambda: log() and all(d["attempts"] for d in log()), "the first attempts")
    deliveries = len(log())
    assert deliveries >= len(stations)  # at least each station's alert; zones may follow
    assert {d["status"] for d in log()} == {"pending"}
    assert all(d["last_error"].startswith("HTTP 503") for d in log())

    # Not retried before the backoff; retried after it, until the receiver is back.
    time.sleep(POLL_S * 10)
    assert receiver.refused == deliveries
    for _ in range(FAILURES_BEFORE_RECOVERY):
        city.clock.advance(timedelta(seconds=BACKOFF_S * 4))
        city.live.system.webhooks.nudge()
        time.sleep(POLL_S * 10)
    receiver.failing.clear()
    city.clock.advance(timedelta(hours=1))
    city.live.system.webhooks.nudge()
    wait_for(lambda: len(receiver.received) == deliveries, "the retried deliveries")
    time.sleep(POLL_S * 10)
    assert len(receiver.received) == deliveries, "each delivered once"
    texts = [b["markdown"]["content"] for b in receiver.bodies()]
    assert all("新警报" in t for t in texts)
    assert {s for s in stations if any(s in t for t in texts)} == set(stations)
    assert {d["status"] for d in log()} == {"delivered"}
    assert min(d["attempts"] for d in log()) >= FAILURES_BEFORE_RECOVERY + 1


def test_webhooks_only_for_known_districts_within_the_keys_scope(
    city: City, receiver: Receiver
) -> None:
    live = city.live
    unknown = live.client.post("/v1/webhooks", json={"district": "Nowhere", "url": receiver.url})
    assert unknown.status_code == 422
    assert DISTRICT_NAME in unknown.json()["detail"]
    elsewhere = bearer(issue(live.system, Role.union, districts=["Elsewhere"]))
    body = {"district": DISTRICT_NAME, "url": receiver.url}
    assert live.client.post("/v1/webhooks", json=body, headers=elsewhere).status_code in (403, 422)
    bad_url = live.client.post("/v1/webhooks", json={"district": DISTRICT_NAME, "url": "x"})
    assert bad_url.status_code == 422
    assert any("url" in e["field"] for e in bad_url.json()["errors"])


# --- the page --------------------------------------------------------------------------------


def test_acknowledging_from_the_page(browser: Any, city: City) -> None:
    live = city.live
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, live)
    item = page.locator("#alert-feed li.alert").first
    alert_subject = item.get_attribute("data-subject")
    item.locator("button[data-action=acknowledge]").click()
    item = page.locator(f"#alert-feed li.alert[data-subject='{alert_subject}']")
    item.locator(".alert-handling[data-acknowledged=true]").wait_for(timeout=int(WAIT_S * 1000))
    assert "已确认" in item.inner_text()
    alert = next(a for a in open_alerts(live) if a["subject"] == alert_subject)
    actions = live.client.get(f"/v1/alerts/{alert['alert_id']}/actions").json()
    assert [a["action"] for a in actions["actions"]] == ["acknowledged"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-acknowledged.png"))

    # Another dashboard sees it at once (pushed), and after a reload (in the snapshot).
    other = browser.new_page(viewport=VIEWPORT)
    sign_in(other, live)
    mark = f"#alert-feed li.alert[data-subject='{alert_subject}'] .alert-handling"
    assert other.locator(mark).get_attribute("data-acknowledged") == "true"
    assign = live.client.post(f"/v1/alerts/{alert['alert_id']}/assign", json={"assignee": "张队"})
    assert assign.status_code == 200
    other.locator(f"{mark} .tag", has_text="张队").wait_for(timeout=int(WAIT_S * 1000))
    page.close()
    other.close()
