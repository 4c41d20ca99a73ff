"""The smaller things from the district unions' walk-through: station CSVs saved by Excel in
GBK import; imports show progress; a key for an unknown district is refused with the known
ones; a bad WAYSTATION_* value is one readable line; a late event's answer says `late`; the
README's examples can be pasted twice."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from store.unit_of_work import Store
from tests.conftest import LiveServer

runner = CliRunner()
README = Path(__file__).resolve().parents[1] / "README.md"
HEADER = "station_id,name,kind,district,subdistrict,lat,lon,capacity"
ROWS = [
    "CY-0001,朝阳门暖心驿站,warm_station,朝阳区,朝外街道,39.9241,116.4343,8",
    "CY-0002,三里屯户外劳动者服务站,outdoor_worker_station,朝阳区,三里屯街道,39.9338,116.4551,12",
]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_dir = tmp_path / "var"
    monkeypatch.setenv("WAYSTATION_DATA_DIR", str(data_dir))
    return data_dir


def stored_names(data_dir: Path) -> set[str]:
    store = Store.open(f"sqlite:///{data_dir / 'waystation.db'}")
    try:
        with store.transaction() as tx:
            return {s.name for s in tx.stations.list()}
    finally:
        store.close()


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-8"])
def test_station_csv_in_any_common_encoding_imports(
    tmp_path: Path, env: Path, encoding: str
) -> None:
    path = tmp_path / "stations.csv"
    path.write_bytes("\r\n".join([HEADER, *ROWS]).encode(encoding))
    result = runner.invoke(app, ["stations", "import", str(path), "--crs", "gcj02"])
    assert result.exit_code == 0, result.output
    assert stored_names(env) == {"朝阳门暖心驿站", "三里屯户外劳动者服务站"}
    assert "importing stations" in result.output  # the progress bar


def test_an_explicit_encoding_wins_and_unreadable_text_says_how(tmp_path: Path, env: Path) -> None:
    path = tmp_path / "stations.csv"
    path.write_bytes("\n".join([HEADER, *ROWS]).encode("big5", errors="replace"))
    result = runner.invoke(app, ["stations", "import", str(path), "--encoding", "big5"])
    assert result.exit_code == 0, result.output
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(HEADER.encode() + b"\n\xff\xfe\x81\x00\xff,\x80\x80")
    result = runner.invoke(app, ["stations", "import", str(garbage)])
    assert result.exit_code == 2
    assert "--encoding" in result.output
    result = runner.invoke(app, ["stations", "import", str(path), "--encoding", "klingon"])
    assert result.exit_code == 2
    assert "unknown encoding" in result.output


def test_a_key_for_an_unknown_district_is_refused_with_the_known_ones(
    tmp_path: Path, env: Path
) -> None:
    path = tmp_path / "stations.csv"
    path.write_text("\n".join([HEADER, *ROWS]), encoding="utf-8")
    assert runner.invoke(app, ["stations", "import", str(path)]).exit_code == 0
    refused = runner.invoke(app, ["keys", "create", "--role", "union", "--district", "海淀区"])
    assert refused.exit_code == 2
    assert "海淀区" in refused.output
    assert "朝阳区" in refused.output  # the known districts
    made = runner.invoke(app, ["keys", "create", "--role", "union", "--district", "朝阳区"])
    assert made.exit_code == 0, made.output


def test_a_bad_setting_is_one_readable_line_per_variable(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "WAYSTATION_DATA_DIR": str(tmp_path / "var"),
        "WAYSTATION_API_PORT": "eighty",
        "WAYSTATION_ZONE_RESOLVE_RATIO": "5",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "keys", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("WAYSTATION_API_PORT: ")
    assert "'eighty'" in lines[0]
    assert lines[1].startswith("WAYSTATION_ZONE_RESOLVE_RATIO: ")


def test_a_late_event_is_answered_late(live: LiveServer) -> None:
    system = live.system
    station = live.client.get("/v1/stations", params={"limit": 1}).json()["stations"][0]
    station_id = station["station"]["station_id"]
    now = system.clock.now()

    def check_in(at: object) -> dict[str, object]:
        return {
            "event_id": str(uuid.uuid4()),
            "type": "check_in",
            "schema_version": 1,
            "station_id": station_id,
            "occurred_at": at.isoformat(),  # type: ignore[attr-defined]
            "payload": {"status": "open", "seats_available": 4},
        }

    first = live.client.post("/v1/events", json=check_in(now))
    assert first.json()["results"][0]["result"] == "accepted"
    system.runtime.drain()
    too_old = now - timedelta(minutes=system.settings.allowed_lateness_minutes + 1)
    late = live.client.post("/v1/events", json=[check_in(too_old), check_in(now)])
    body = late.json()
    assert [r["result"] for r in body["results"]] == ["late", "accepted"]
    assert (body["accepted"], body["late"]) == (1, 1)
    system.runtime.drain()
    with system.store.transaction() as tx:
        archived = tx.events.get(body["results"][0]["event_id"])
    assert archived is not None
    assert archived.status == "late"


def test_readme_examples_make_a_new_event_id_each_time() -> None:
    text = README.read_text(encoding="utf-8")
    literal = re.compile(r'"event_id":\s*"[0-9a-f]{8}-[0-9a-f]{4}-')
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    posting = [b for b in blocks if "/v1/events" in b]
    assert posting
    assert not any(literal.search(b) for b in posting)
    assert all("uuid.uuid4()" in b for b in posting if '"event_id"' in b)
