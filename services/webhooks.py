r"""Outgoing webhooks: each district's alert transitions (opened, escalated, resolved) sent to
the district's receivers, signed, retried with backoff and logged.

The runtime's listener only queues the transitions, so a slow or dead receiver never holds
the processor. The dispatcher's thread writes one delivery per transition and webhook to the
log before the first attempt (a restart retries what was not delivered), then posts each
with an HMAC-SHA256 signature over `timestamp.body`:

    X-Waystation-Timestamp: 1764470400
    X-Waystation-Signature: sha256=<hex>

DingTalk and Feishu group robots with signature verification (加签) read none of that, so a
post to one is also signed its way, with the secret the robot's settings show (given when the
webhook was created). The robots refuse a timestamp an hour away from their own clock, so it
is taken from the wall clock at each attempt, not from the processing clock:

    dingtalk  string_to_sign = f"{timestamp_ms}\n{secret}"
              sign = base64(HMAC-SHA256(key=secret, msg=string_to_sign))
              url?access_token=...&timestamp=<timestamp_ms>&sign=<sign, URL-encoded>
    feishu    string_to_sign = f"{timestamp_s}\n{secret}"
              sign = base64(HMAC-SHA256(key=string_to_sign, msg=b""))
              {"timestamp": "<timestamp_s>", "sign": <sign>, "msg_type": ..., "content": ...}

Group robots (wecom, dingtalk, feishu) answer HTTP 200 even when they refuse a message, with
the reason in the body, so for them a delivery counts only when the body says so too:
`errcode` 0 (wecom, dingtalk), `code` 0 (feishu; older robots: `StatusCode` 0).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import queue
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from schemas.alert_actions import Delivery, DeliveryStatus, Webhook, WebhookFlavour
from schemas.alerts import Alert, AlertEvent, AlertKind, AlertTransition
from services import alert_words
from services.inbox import take_waiting
from store.unit_of_work import Store
from streams.clock import Clock
from streams.embedded import EmbeddedRuntime
from streams.pipeline import StepOutcome
from waystation.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Waystation-Signature"
TIMESTAMP_HEADER = "X-Waystation-Timestamp"
DELIVERY_HEADER = "X-Waystation-Delivery"
SECRET_BYTES = 32
DUE_BATCH = 100  # deliveries attempted per pass
ERROR_MAX_CHARS = 500
MS_PER_S = 1000
DINGTALK_SIGN_PARAMS = ("timestamp", "sign")
ROBOT_OK = 0  # the code a group robot answers when it took the message
_STOP = object()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def dingtalk_signed_url(url: str, secret: str, now_s: float) -> str:
    """The robot's URL (its `access_token` kept) with `timestamp` in milliseconds and `sign`
    added to the query, as a DingTalk robot with 加签 checks them."""
    timestamp = str(int(now_s * MS_PER_S))
    string_to_sign = f"{timestamp}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    signature = base64.b64encode(digest).decode()
    parts = urlsplit(url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and pair.partition("=")[0] not in DINGTALK_SIGN_PARAMS
    ]
    query = "&".join([*kept, urlencode({"timestamp": timestamp, "sign": signature})])
    return urlunsplit(parts._replace(query=query))


def feishu_signed_body(body: bytes, secret: str, now_s: float) -> bytes:
    """The message with `timestamp` (seconds, a string) and `sign` beside `msg_type` and
    `content`, as a Feishu robot with signature verification checks them. Feishu keys the
    HMAC with the string to sign and signs nothing (unlike DingTalk)."""
    timestamp = str(int(now_s))
    string_to_sign = f"{timestamp}\n{secret}".encode()
    signature = base64.b64encode(hmac.new(string_to_sign, b"", hashlib.sha256).digest()).decode()
    message = json.loads(body)
    signed = {"timestamp": timestamp, "sign": signature, **message}
    return json.dumps(signed, ensure_ascii=False).encode()


def robot_refusal(flavour: WebhookFlavour, answer: httpx.Response) -> str | None:
    """Why a group robot did not take a message it answered with a 2xx, or None if it did.
    Our own JSON receivers' 2xx is enough."""
    if flavour is WebhookFlavour.json:
        return None
    try:
        said = answer.json()
    except ValueError:
        said = None
    if not isinstance(said, dict):
        return f"HTTP {answer.status_code}, not a robot's answer: {answer.text}"
    if flavour is WebhookFlavour.feishu and "code" not in said and "StatusCode" in said:
        code, message = said.get("StatusCode"), said.get("StatusMessage")
    elif flavour is WebhookFlavour.feishu:
        code, message = said.get("code"), said.get("msg")
    else:
        code, message = said.get("errcode"), said.get("errmsg")
    if type(code) is int and code == ROBOT_OK:  # not `false`, which Python takes for 0
        return None
    return f"HTTP {answer.status_code}, the {flavour} robot refused it: code {code}: {message}"


def backoff(attempts: int, settings: Settings) -> timedelta:
    """The wait after the `attempts`-th failure: doubling from the base, capped."""
    seconds = settings.webhook_backoff_seconds * 2 ** (attempts - 1)
    return timedelta(seconds=min(seconds, settings.webhook_backoff_max_seconds))


class Escalations:
    """Which alert steps are worth telling people: opened and resolved, and an update of an
    open zone alert once its uncovered demand reaches `ratio` times what was last told."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self._told: dict[str, float] = {}

    def worth_telling(self, events: Iterable[AlertEvent]) -> Iterator[tuple[str, Alert]]:
        for event in events:
            alert = event.alert
            demand = alert.evidence.uncovered_demand_workers
            if event.transition is AlertTransition.opened:
                self._told[alert.alert_id] = demand
                yield "opened", alert
            elif event.transition is AlertTransition.resolved:
                self._told.pop(alert.alert_id, None)
                yield "resolved", alert
            elif alert.kind is AlertKind.zone_underserved:
                told = self._told.setdefault(alert.alert_id, demand)  # unknown: a baseline
                if demand > told and demand >= told * self.ratio:
                    self._told[alert.alert_id] = demand
                    yield "escalated", alert


def body_for(
    flavour: WebhookFlavour, transition: str, alert: Alert, name: str | None, sent_at: datetime
) -> dict[str, Any]:
    """What each kind of receiver accepts: a group robot's markdown or text message, or our
    JSON with the alert itself."""
    text = alert_words.message(transition, alert, name)
    match flavour:
        case WebhookFlavour.wecom:
            return {"msgtype": "markdown", "markdown": {"content": text}}
        case WebhookFlavour.dingtalk:
            title = alert_words.title(transition, alert)
            return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        case WebhookFlavour.feishu:
            return {"msg_type": "text", "content": {"text": text}}
        case WebhookFlavour.json:
            return {
                "event": f"alert.{transition}",
                "sent_at": sent_at.isoformat(),
                "alert": alert.model_dump(mode="json"),
                "subject_name": name,
                "text": text,
            }


def new_secret() -> str:
    return secrets.token_hex(SECRET_BYTES)


class WebhookDispatcher:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock,
        *,
        client: Callable[[], httpx.Client] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.escalations = Escalations(settings.webhook_escalation_ratio)
        self._client_factory = client or (
            lambda: httpx.Client(timeout=settings.webhook_timeout_seconds)
        )
        self._inbox: queue.Queue[object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._runtime: EmbeddedRuntime | None = None

    def start(self, runtime: EmbeddedRuntime) -> None:
        self._runtime = runtime
        runtime.listeners.append(self.on_outcome)
        self._thread = threading.Thread(target=self._run, name="waystation-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._runtime is not None and self.on_outcome in self._runtime.listeners:
            self._runtime.listeners.remove(self.on_outcome)
        if self._thread is not None:
            self._inbox.put(_STOP)
            self._thread.join(timeout=self.settings.webhook_timeout_seconds * 2)
            self._thread = None

    def on_outcome(self, outcome: StepOutcome) -> None:
        """The runtime's listener: queue and return at once."""
        if outcome.alert_events:
            self._inbox.put(list(outcome.alert_events))

    def nudge(self) -> None:
        """Look for due deliveries now (after the clock moved, in tests and tools)."""
        self._inbox.put([])

    def caught_up(self, timeout_s: float) -> bool:
        """Wait until every transition queued so far has been logged as deliveries (tests and
        tools: a webhook created next is then sent only what happens after it)."""
        done = threading.Event()
        self._inbox.put(done)
        return done.wait(timeout_s)

    def _run(self) -> None:
        with self._client_factory() as client:
            while True:
                items = take_waiting(self._inbox, self.settings.webhook_poll_seconds)
                try:
                    for item in items:
                        if isinstance(item, list):
                            self._enqueue(item)
                        elif isinstance(item, threading.Event):
                            item.set()
                    self._attempt_due(client)
                except Exception:  # a bad pass must not end deliveries for good
                    log.exception("a webhook pass failed; due deliveries are retried")
                if any(item is _STOP for item in items):
                    return

    def _enqueue(self, events: list[AlertEvent]) -> None:
        told = list(self.escalations.worth_telling(events))
        if not told:
            return
        now = self.clock.now()
        with self.store.transaction() as tx:
            hooks: dict[str, list[Webhook]] = {}
            for hook, _ in tx.webhooks.list({a.district for _, a in told if a.district}):
                hooks.setdefault(hook.district, []).append(hook)
            for transition, alert in told:
                mine = hooks.get(alert.district or "", [])
                if not mine:
                    continue
                name = None
                if alert.kind is not AlertKind.zone_underserved:
                    station = tx.stations.get(alert.subject)
                    name = station.name if station else None
                for hook in mine:
                    body = body_for(hook.flavour, transition, alert, name, now)
                    delivery = Delivery(
                        delivery_id=str(uuid.uuid4()),
                        webhook_id=hook.webhook_id,
                        alert_id=alert.alert_id,
                        transition=transition,
                        status=DeliveryStatus.pending,
                        attempts=0,
                        last_error=None,
                        created_at=now,
                        next_attempt_at=None,
                        delivered_at=None,
                    )
                    tx.webhooks.log(delivery, json.dumps(body, ensure_ascii=False))

    def _attempt_due(self, client: httpx.Client) -> None:
        now = self.clock.now()
        with self.store.transaction(readonly=True) as tx:
            due = tx.webhooks.due(now, DUE_BATCH)
            hooks = {h.webhook_id: (h, secret) for h, secret in tx.webhooks.list()}
        for delivery, body in due:
            found = hooks.get(delivery.webhook_id)
            attempts = delivery.attempts + 1
            error = "the webhook was removed" if found is None else None
            if found is not None:
                error = self._post(client, found[0], found[1], delivery, body.encode())
            delivered = error is None
            last = attempts >= self.settings.webhook_max_attempts or found is None
            status = (
                DeliveryStatus.delivered
                if delivered
                else DeliveryStatus.failed
                if last
                else DeliveryStatus.pending
            )
            with self.store.transaction() as tx:
                tx.webhooks.record_attempt(
                    delivery.delivery_id,
                    status=status,
                    attempts=attempts,
                    error=error,
                    next_attempt_at=None
                    if delivered or last
                    else now + backoff(attempts, self.settings),
                    delivered_at=now if delivered else None,
                )

    def _post(
        self, client: httpx.Client, hook: Webhook, secret: str, delivery: Delivery, body: bytes
    ) -> str | None:
        """Posts one delivery, signed our way and, for a robot given its secret, its own way
        too; returns why it failed, or None."""
        url = hook.url
        robot_now_s = time.time()  # robots check it against the wall clock, not processing time
        if secret and hook.flavour is WebhookFlavour.dingtalk:
            url = dingtalk_signed_url(url, secret, robot_now_s)
        elif secret and hook.flavour is WebhookFlavour.feishu:
            body = feishu_signed_body(body, secret, robot_now_s)
        timestamp = str(int(self.clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: timestamp,
            DELIVERY_HEADER: delivery.delivery_id,
        }
        if secret:  # an unsigned robot's webhook has none
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        try:
            answer = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]
        if not answer.is_success:
            return f"HTTP {answer.status_code}: {answer.text}"[:ERROR_MAX_CHARS]
        refused = robot_refusal(hook.flavour, answer)
        return refused[:ERROR_MAX_CHARS] if refused is not None else None
