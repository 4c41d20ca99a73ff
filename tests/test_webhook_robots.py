"""DingTalk and Feishu group robots with signature verification (加签): a webhook keeps the
secret the robot shows, and only those robots' webhooks take one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from demo.sample_city import DISTRICT_NAME
from schemas.alert_actions import Webhook, WebhookFlavour
from store.unit_of_work import Store
from tests.conftest import T0, LiveServer
from tests.served_city import alerting_settings, opened_sample_city

# As the robots' settings pages show them: DingTalk's is "SEC" and 64 hex digits.
DINGTALK_SECRET = "SEC" + hashlib.sha256(b"the district's dingtalk robot").hexdigest()


@dataclass
class City:
    live: LiveServer


@pytest.fixture
def city(tmp_path: Path) -> Iterator[City]:
    with opened_sample_city(alerting_settings(tmp_path), T0) as served:
        yield City(served.live)


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
