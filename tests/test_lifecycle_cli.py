"""The station lifecycle and poster commands as a user types them."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from services.cli import app
from services.scan_tokens import TokenSigner, scan_secret
from store.unit_of_work import Store
from tests.conftest import CENTRE, make_station
from waystation.settings import Settings

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("WAYSTATION_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("WAYSTATION_PUBLIC_BASE_URL", "https://stations.example")
    opened = Store.open(Settings().resolved_database_url)
    with opened.transaction() as tx:
        tx.station_changes.write(
            [make_station("C-1", *CENTRE), make_station("C-2", CENTRE[0], CENTRE[1] + 0.01)],
            actor="test",
            at=datetime.now(UTC),
        )
    return opened


def test_retire_and_reactivate_from_the_command_line(store: Store) -> None:
    retired = runner.invoke(app, ["stations", "retire", "C-1"])
    assert retired.exit_code == 0, retired.output
    assert "retired (version 2)" in retired.output
    with store.transaction() as tx:
        assert tx.stations.get("C-1") is None
        assert [c.actor for c in tx.station_changes.history("C-1")] == ["test", "cli"]
    assert runner.invoke(app, ["stations", "retire", "C-1"]).exit_code == 1
    back = runner.invoke(app, ["stations", "reactivate", "C-1"])
    assert back.exit_code == 0, back.output
    with store.transaction() as tx:
        assert tx.stations.get("C-1") == make_station("C-1", *CENTRE)
    assert runner.invoke(app, ["stations", "reactivate", "C-2"]).exit_code == 1


def test_posters_for_some_or_all_and_revoking_them(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "posters"
    one = runner.invoke(app, ["stations", "poster", "C-1", "--out", str(out)])
    assert one.exit_code == 0, one.output
    assert sorted(p.name for p in out.iterdir()) == ["C-1.pdf", "C-1.png"]
    image = Image.open(io.BytesIO((out / "C-1.png").read_bytes()))
    assert image.size == (1240, 1754)
    assert (out / "C-1.pdf").read_bytes().startswith(b"%PDF")
    every = runner.invoke(
        app, ["stations", "poster", "--all", "--out", str(out), "--format", "png"]
    )
    assert every.exit_code == 0, every.output
    assert (out / "C-2.png").exists()
    assert not (out / "C-2.pdf").exists()
    assert runner.invoke(app, ["stations", "poster", "C-9", "--out", str(out)]).exit_code == 1
    assert runner.invoke(app, ["stations", "poster"]).exit_code == 2

    revoked = runner.invoke(app, ["stations", "revoke-posters", "C-1"])
    assert revoked.exit_code == 0, revoked.output
    settings = Settings()
    secret = (settings.data_dir / "worker_ref.key").read_text().strip()
    signer = TokenSigner(scan_secret(settings, bytes.fromhex(secret)))
    assert f"https://stations.example/scan/{signer.sign('C-1', 2)}" in revoked.output.replace(
        "\n", ""
    )
    with store.transaction() as tx:
        assert tx.scan_tokens.generation("C-1") == 2
        assert tx.scan_tokens.generation("C-2") == 1
