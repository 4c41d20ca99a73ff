"""DingTalk and Feishu group robots with signature verification (加签), played by local HTTP
servers that check each post the way the vendors document it: the robot's own secret, the
wall clock within an hour, and the answer in the body (a robot says HTTP 200 even when it
refuses). The receivers compute the signatures here from the documented algorithms, never
through the product's code, and the deliveries go through the real dispatcher."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from demo.sample_city import DISTRICT_NAME, SampleCity
from schemas.alert_actions import Webhook, WebhookFlavour
from store.unit_of_work import Store
from streams.clock import ManualClock
from tests.conftest import T0, LiveServer
from tests.served_city import alerting_settings, envelope, opened, opened_sample_city, post

WAIT_S = 15.0
POLL_S = 0.05
BACKOFF_S = 30.0
ROBOT_WINDOW_S = 3600  # both robots refuse a timestamp further than an hour from their clock
MS_PER_S = 1000
ACCESS_TOKEN = "b1c6d2f0e9a84f3c9e2a7d5b8c4f1a6e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a"
# As the robots' settings pages show them: DingTalk's is "SEC" and 64 hex digits.
DINGTALK_SECRET = "SEC" + hashlib.sha256(b"the district's dingtalk robot").hexdigest()
OTHER_DINGTALK_SECRET = "SEC" + hashlib.sha256(b"another group's robot").hexdigest()
FEISHU_SECRET = "qZ3wT8mN1rV5kX9bL2cF7h"
OTHER_FEISHU_SECRET = "pA6sD4fG8hJ2kL0zX3cV5b"

ERRCODE_OK = {"errcode": 0, "errmsg": "ok"}  # DingTalk's and WeCom's
DINGTALK_SIGN_NOT_MATCH = {"errcode": 310000, "errmsg": "sign not match"}
FEISHU_OK = {"code": 0, "data": {}, "msg": "success"}
FEISHU_OK_OLDER = {"Extra": None, "StatusCode": 0, "StatusMessage": "success"}
FEISHU_SIGN_FAIL = {
    "code": 19021,
    "data": {},
    "msg": "sign match fail or timestamp is not within one hour from current time",
}
WECOM_BAD_KEY = {"errcode": 93000, "errmsg": "invalid webhook url"}


def dingtalk_signature_holds(secret: str, query: dict[str, list[str]]) -> bool:
    """DingTalk's documented check: timestamp in ms within an hour, and sign =
    base64(HmacSHA256(key=secret, data=timestamp + "\\n" + secret)), URL-encoded in the query."""
    if "timestamp" not in query or "sign" not in query:
        return False
    timestamp = query["timestamp"][0]
    if abs(int(timestamp) - time.time() * MS_PER_S) > ROBOT_WINDOW_S * MS_PER_S:
        return False
    key = secret.encode("utf-8")
    data = (timestamp + "\n" + secret).encode("utf-8")
    expected = base64.b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(query["sign"][0], expected)


def feishu_signature_holds(secret: str, body: dict[str, Any]) -> bool:
    """Feishu's documented check: timestamp (a string, in s) within an hour, and sign =
    base64(HmacSHA256 keyed with timestamp + "\\n" + secret, over nothing)."""
    timestamp, sign = body.get("timestamp"), body.get("sign")
    if not isinstance(timestamp, str) or not isinstance(sign, str):
        return False
    if abs(int(timestamp) - time.time()) > ROBOT_WINDOW_S:
        return False
    key = (timestamp + "\n" + secret).encode("utf-8")
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    return hmac.compare_digest(sign, expected)


@dataclass
class Robot:
    """A group robot: takes a post and records its message when the signature holds (WeCom's
    have none), and answers in its vendor's shape either way, always with HTTP 200."""

    flavour: WebhookFlavour
    secret: str
    took_it: dict[str, Any]  # the answer when it takes a message
    url: str = ""
    taken: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    raw_queries: list[str] = field(default_factory=list)
    gone: dict[str, Any] | None = None  # answered to every post once the robot is removed
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        parts = urlsplit(path)
        with self.lock:
            self.raw_queries.append(parts.query)
            if self.gone is not None:
                self.refused += 1
                return self.gone
            # A robot without a secret is secured otherwise; it is sent no signature at all.
            if self.flavour is WebhookFlavour.dingtalk:
                query = parse_qs(parts.query)
                holds = query.get("access_token") == [ACCESS_TOKEN]
                signed = dingtalk_signature_holds(self.secret, query) if self.secret else True
                holds = holds and signed and (bool(self.secret) or "sign" not in query)
                refusal = DINGTALK_SIGN_NOT_MATCH
            elif self.flavour is WebhookFlavour.feishu:
                holds = (
                    feishu_signature_holds(self.secret, body)
                    if self.secret
                    else "sign" not in body and "timestamp" not in body
                )
                refusal = FEISHU_SIGN_FAIL
            else:
                holds, refusal = True, {}
            if not holds:
                self.refused += 1
                return refusal
            self.taken.append(body)
            return self.took_it


@pytest.fixture
def robots() -> Iterator[Callable[[WebhookFlavour, str], Robot]]:
    """Starts robots on 127.0.0.1 (`robots(flavour, secret)`); all stop at the end."""
    servers: list[ThreadingHTTPServer] = []

    def start(flavour: WebhookFlavour, secret: str) -> Robot:
        took_it = FEISHU_OK if flavour is WebhookFlavour.feishu else ERRCODE_OK
        robot = Robot(flavour, secret, took_it=took_it)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                said = json.dumps(robot.answer(self.path, body)).encode()
                self.send_response(200)  # refusals too: the code in the body says it
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(said)))
                self.end_headers()
                self.wfile.write(said)

            def log_message(self, *_: object) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        robot.url = {
            WebhookFlavour.dingtalk: f"{base}/robot/send?access_token={ACCESS_TOKEN}",
            WebhookFlavour.feishu: f"{base}/open-apis/bot/v2/hook/{ACCESS_TOKEN[:36]}",
        }.get(flavour, f"{base}/cgi-bin/webhook/send?key={ACCESS_TOKEN[:36]}")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return robot

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@dataclass
class City:
    live: LiveServer
    city: SampleCity
    clock: ManualClock

    def degrade(self, station_id: str, water: str = "out_of_service") -> None:
        """A station's drinking water breaks (an alert opens) or is back (it resolves)."""
        self.clock.advance(timedelta(minutes=1))
        payload = {
            "amenities": {"drinking_water": water, "rest_seats": "ok"},
            "next_check_in_seconds": 3600,
        }
        post(self.live, [envelope("health_check", station_id, self.clock.now(), payload)])

    def create(self, flavour: WebhookFlavour, url: str, **extra: Any) -> dict[str, Any]:
        body = {"district": DISTRICT_NAME, "url": url, "flavour": flavour} | extra
        # Transitions of the city's opening, still queued, would reach the new webhook too.
        assert self.live.system.webhooks.caught_up(WAIT_S)
        answer = self.live.client.post("/v1/webhooks", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def deliveries(self, hook: dict[str, Any]) -> list[dict[str, Any]]:
        url = f"/v1/webhooks/{hook['webhook_id']}/deliveries"
        return self.live.client.get(url).json()["deliveries"]

    def retry_due(self) -> None:
        """Moves past the first backoff and has the dispatcher look for due deliveries."""
        self.clock.advance(timedelta(seconds=BACKOFF_S * 2))
        self.live.system.webhooks.nudge()


@pytest.fixture
def city(tmp_path: Path) -> Iterator[City]:
    settings = alerting_settings(
        tmp_path, webhook_backoff_seconds=BACKOFF_S, webhook_poll_seconds=POLL_S
    )
    with opened_sample_city(settings, T0) as served:
        yield City(served.live, served.city, served.clock)


def wait_for(predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def attempted(city: City, hook: dict[str, Any], times: int = 1) -> Callable[[], bool]:
    def done() -> bool:
        log = city.deliveries(hook)
        return bool(log) and all(d["attempts"] >= times for d in log)

    return done


def test_a_dingtalk_robot_takes_posts_signed_with_its_secret_and_refuses_others(
    city: City, robots: Callable[[WebhookFlavour, str], Robot]
) -> None:
    robot = robots(WebhookFlavour.dingtalk, DINGTALK_SECRET)
    # Pasted from the robot's page with a trailing newline: kept without it.
    mine = city.create(WebhookFlavour.dingtalk, robot.url, secret=DINGTALK_SECRET + "\n")
    assert mine["secret"] == DINGTALK_SECRET
    wrong = city.create(WebhookFlavour.dingtalk, robot.url, secret=OTHER_DINGTALK_SECRET)
    station = opened(city.city)[0]
    city.degrade(station)

    wait_for(lambda: robot.taken and robot.refused, "a post taken and one refused")
    wait_for(attempted(city, wrong), "the refused post's attempt")
    assert [m["msgtype"] for m in robot.taken] == ["markdown"]
    assert station in robot.taken[0]["markdown"]["text"]
    wait_for(lambda: {d["status"] for d in city.deliveries(mine)} == {"delivered"}, "delivered")
    # The sign is URL-encoded: a raw "+" would reach the robot as a space.
    assert all("+" not in q and "/" not in q for q in robot.raw_queries)
    assert all(q.startswith(f"access_token={ACCESS_TOKEN}&") for q in robot.raw_queries)

    # The robot's HTTP 200 with errcode 310000 is a failed attempt, quoted, and retried.
    refused = city.deliveries(wrong)
    assert {d["status"] for d in refused} == {"pending"}
    assert all("310000" in d["last_error"] for d in refused)
    assert all("sign not match" in d["last_error"] for d in refused)
    assert all(d["next_attempt_at"] is not None for d in refused)
    city.retry_due()
    wait_for(attempted(city, wrong, times=2), "the retry after the backoff")
    assert {d["status"] for d in city.deliveries(wrong)} == {"pending"}
    assert len(robot.taken) == 1, "the retry was refused again, and nothing else was sent"


def test_a_feishu_robot_takes_posts_signed_with_its_secret_and_refuses_others(
    city: City, robots: Callable[[WebhookFlavour, str], Robot]
) -> None:
    robot = robots(WebhookFlavour.feishu, FEISHU_SECRET)
    mine = city.create(WebhookFlavour.feishu, robot.url, secret=FEISHU_SECRET)
    assert mine["secret"] == FEISHU_SECRET
    wrong = city.create(WebhookFlavour.feishu, robot.url, secret=OTHER_FEISHU_SECRET)
    station = opened(city.city)[0]
    city.degrade(station)

    wait_for(lambda: robot.taken and robot.refused, "a post taken and one refused")
    wait_for(attempted(city, wrong), "the refused post's attempt")
    message = robot.taken[0]
    assert message["msg_type"] == "text"
    assert station in message["content"]["text"]
    wait_for(lambda: {d["status"] for d in city.deliveries(mine)} == {"delivered"}, "delivered")
    refused = city.deliveries(wrong)
    assert {d["status"] for d in refused} == {"pending"}
    assert all("19021" in d["last_error"] for d in refused)
    assert all("sign match fail" in d["last_error"] for d in refused)

    # A robot answering in the older shape (StatusCode 0) took the message too.
    robot.took_it = FEISHU_OK_OLDER
    city.degrade(station, water="ok")
    wait_for(lambda: len(robot.taken) == 2, "the resolution")
    wait_for(
        lambda: [d["status"] for d in city.deliveries(mine)] == ["delivered", "delivered"],
        "both delivered",
    )
    assert "警报解除" in robot.taken[1]["content"]["text"]


def test_a_robot_answering_200_with_an_error_code_is_not_delivered(
    city: City, robots: Callable[[WebhookFlavour, str], Robot]
) -> None:
    robot = robots(WebhookFlavour.wecom, "")
    hook = city.create(WebhookFlavour.wecom, robot.url)
    station = opened(city.city)[0]
    city.degrade(station)
    wait_for(lambda: {d["status"] for d in city.deliveries(hook)} == {"delivered"}, "delivered")
    assert [m["msgtype"] for m in robot.taken] == ["markdown"]

    robot.gone = WECOM_BAD_KEY  # the group removed the robot: it says so with HTTP 200
    city.degrade(station, water="ok")
    resolved = lambda: [d for d in city.deliveries(hook) if d["transition"] == "resolved"]  # noqa: E731
    wait_for(lambda: resolved() and resolved()[0]["attempts"], "the resolution's attempt")
    failed = resolved()[0]
    assert failed["status"] == "pending"
    assert failed["delivered_at"] is None
    assert "93000" in failed["last_error"]
    assert "invalid webhook url" in failed["last_error"]
    assert len(robot.taken) == 1


def test_a_secret_is_given_only_for_signing_robots(city: City) -> None:
    def create(flavour: str, secret: str) -> httpx.Response:
        body = {"district": DISTRICT_NAME, "url": "https://example.org/hook", "flavour": flavour}
        return city.live.client.post("/v1/webhooks", json=body | {"secret": secret})

    for flavour in ("json", "wecom"):
        refused = create(flavour, DINGTALK_SECRET)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["secret"]
    wecom = create("wecom", DINGTALK_SECRET).json()["errors"][0]["reason"]
    assert "WeCom" in wecom
    assert "no signing secret" in wecom
    json_reason = create("json", DINGTALK_SECRET).json()["errors"][0]["reason"]
    assert "generated" in json_reason

    for bad in ("short", "has a space inside it", "密钥" * 8, "S" * 129):
        refused = create("dingtalk", bad)
        assert refused.status_code == 422, bad
        assert [e["field"] for e in refused.json()["errors"]] == ["secret"]
    assert create("feishu", "S" * 128).status_code == 201
    listed = city.live.client.get("/v1/webhooks").json()["webhooks"]
    assert all("secret" not in hook for hook in listed)


def test_a_dingtalk_secret_is_kept_whole(store: Store) -> None:
    """DingTalk's secrets (67 characters) are longer than the generated ones; PostgreSQL
    enforces the column's length, SQLite does not."""
    hook = Webhook(
        webhook_id="robot",
        district=DISTRICT_NAME,
        url="https://oapi.dingtalk.com/robot/send?access_token=x",
        flavour=WebhookFlavour.dingtalk,
        created_at=T0,
        created_by="admin",
    )
    with store.transaction() as tx:
        tx.webhooks.add(hook, DINGTALK_SECRET)
    with store.transaction(readonly=True) as tx:
        found = tx.webhooks.get("robot")
    assert found is not None
    assert found[1] == DINGTALK_SECRET


def test_robots_without_a_secret_are_sent_no_signature(
    city: City, robots: Callable[[WebhookFlavour, str], Robot]
) -> None:
    """A robot secured by keywords or addresses is not given a signature made with a secret
    it does not know: its posts carry none, and the webhook's secret is empty."""
    dingtalk, feishu = robots(WebhookFlavour.dingtalk, ""), robots(WebhookFlavour.feishu, "")
    hooks = [
        city.create(WebhookFlavour.dingtalk, dingtalk.url),
        city.create(WebhookFlavour.feishu, feishu.url),
    ]
    assert [hook["secret"] for hook in hooks] == ["", ""]
    city.degrade(opened(city.city)[0])
    wait_for(lambda: dingtalk.taken and feishu.taken, "both robots took a post")
    assert dingtalk.refused == feishu.refused == 0
    for hook in hooks:
        wait_for(
            lambda hook=hook: {d["status"] for d in city.deliveries(hook)} == {"delivered"},
            "delivered",
        )
