"""The Grafana dashboards in deploy/grafana/dashboards: every panel queries the provisioned
Prometheus data source, and every metric a panel's PromQL names is one the code exports (the
API's /metrics, or a worker's); docker-compose mounts them where the provisioning looks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.app import create_app
from services.system import EmbeddedSystem
from streams.consumer_lag import ConsumerLag

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
}  # fmt: skip
SERIES_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count", ""),
}


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression: what is left once strings, label matchers,
    ranges, grouping clauses, function calls, keywords and numbers are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        after = text[match.end() :].lstrip()
        if after.startswith("("):
            continue  # a function or an aggregation
        if match.group().lower() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{job="x"}[5m]))) '
        "/ on (le) b_total + sum without (kind) (c) * 2"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c"}


def exported(exposition: str) -> set[str]:
    """Series names an exposition offers, including the families that have no sample yet
    (a labelled counter before its first increment)."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        names |= {sample.name for sample in family.samples}
        names |= {family.name + suffix for suffix in SERIES_SUFFIXES.get(family.type, ("",))}
    return names


@pytest.fixture
def exported_names(system: EmbeddedSystem) -> set[str]:
    with TestClient(create_app(system, manage_lifecycle=False)) as client:
        api = client.get("/metrics")
    assert api.status_code == 200
    worker = CollectorRegistry()  # what a worker's /metrics adds to the process registry
    worker.register(ConsumerLag(lambda: {("waystation.events.visit", 0): 3}))
    text = api.text + generate_latest(REGISTRY).decode() + generate_latest(worker).decode()
    return exported(text)


def dashboards() -> list[tuple[Path, dict[str, Any]]]:
    found = sorted(DASHBOARDS.glob("*.json"))
    assert found, "no dashboards"
    return [(path, json.loads(path.read_text(encoding="utf-8"))) for path in found]


def test_every_panel_queries_an_exported_metric(exported_names: set[str]) -> None:
    wanted = {"waystation_consumer_lag_messages", "waystation_dead_letters_total"}
    assert wanted <= exported_names
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    uids = {source["uid"] for source in datasources["datasources"]}
    queried: set[str] = set()
    uids_seen: set[str] = set()
    for path, board in dashboards():
        assert board["uid"], path
        assert board["title"], path
        assert board["panels"], path
        for panel in board["panels"]:
            assert panel["targets"], f"{path.name}: {panel['title']} queries nothing"
            for target in panel["targets"]:
                names = metric_names(target["expr"])
                assert names, f"{path.name}: {panel['title']}: no metric in {target['expr']}"
                unknown = names - exported_names
                assert not unknown, f"{path.name}: {panel['title']} queries {sorted(unknown)}"
                queried |= names
                uids_seen.add(target["datasource"]["uid"])
    assert uids_seen <= uids, "panels name the provisioned data source"
    boards = {
        "waystation_events_ingested_total",  # ingest rate
        "waystation_consumer_lag_messages",  # consumer lag per partition
        "waystation_processing_seconds_bucket",  # processing latency
        "waystation_stations",  # stations by state
        "waystation_open_alerts",  # open alerts
        "waystation_dead_letters_total",  # dead letters
    }
    assert boards <= queried


def test_compose_mounts_the_dashboards_where_provisioning_reads_them() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "waystation.yml").read_text())
    paths = {p["options"]["path"] for p in providers["providers"]}
    mounts = dict(
        volume.removesuffix(":ro").split(":", 1)
        for volume in compose["services"]["grafana"]["volumes"]
    )
    assert mounts["./deploy/grafana/dashboards"] in paths
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    scraped = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target.split(":")[0]
        for job in scraped["scrape_configs"]
        for config in job["static_configs"]
        for target in config["targets"]
    }
    workers = {name for name, s in compose["services"].items() if "worker" in str(s.get("command"))}
    assert len(workers) == 2
    assert targets >= {"api", *workers}, "Prometheus scrapes the API and every worker"
