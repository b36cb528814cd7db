"""The monitor end to end on a tiny trained sentiment run: planted surge → one alert, idempotent replays,
kill -9 + restart, malformed items, webhook retries/failures, a locked database, metrics and the report."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from deploy_helpers import serving
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from monitor_helpers import monitor_tree, sentences_file, sentiment_run
from sqlalchemy import create_engine, select

from graftkit.apps.monitor import Monitor
from graftkit.apps.monitor import store as st
from graftkit.apps.monitor.config import monitor_config_from_dict
from graftkit.apps.monitor.demo import DemoSpec, write_demo
from graftkit.apps.monitor.sources import Item, replay
from graftkit.apps.store import StoreError

SPEC = DemoSpec(hours=20, companies=2, per_hour=80, surge_company="BOLT", surge_start=15, surge_hours=1.5,
                surge_rate=2.0, surge_negative=0.8, background_negative=0.1, seed=3)


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir) -> Path:
    return sentiment_run(tmp_path_factory.getbasetemp() / "monitor", tiny_model_dir)


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> tuple[Path, dict]:
    base = tmp_path_factory.mktemp("stream")
    manifest = write_demo(sentences_file(base / "pool.txt"), base / "stream.jsonl", SPEC)
    return base / "stream.jsonl", manifest


def _monitor(run: Path, db: Path, **extra) -> Monitor:
    return Monitor(monitor_config_from_dict(monitor_tree(run, f"sqlite:///{db}", **extra)))


def _tables(db: Path) -> dict[str, list[tuple]]:
    """Every stored row that must not depend on batching, restarts or wall-clock time."""
    eng = create_engine(f"sqlite:///{db}")
    skip_cols = {"ingested_at", "at", "updated_at"}
    out = {}
    with eng.connect() as conn:
        for table in (st.items, st.item_topics, st.alerts, st.rule_states, st.progress, st.skipped):
            cols = [c for c in table.c if c.name not in skip_cols]
            out[table.name] = sorted(tuple(r) for r in conn.execute(select(*cols)))
    eng.dispose()
    return out


def test_planted_surge_raises_exactly_one_alert_at_the_right_time(run, stream, tmp_path):
    path, manifest = stream
    with _monitor(run, tmp_path / "m.db") as mon:
        stats = mon.run(replay(path, mon.cfg.fields))
        alerts = st.list_alerts(mon.engine)
        metrics = mon.metrics.render()[0].decode()
    gold = {json.loads(line)["id"]: json.loads(line)["gold"] for line in path.read_text().splitlines()}
    rows = _tables(tmp_path / "m.db")["monitor_items"]
    assert stats["ingested"] == manifest["items"] == len(rows) and stats.get("skipped", 0) == 0
    assert all(r[5] == gold[r[0]] for r in rows)  # the tiny run learned its pool: labels are the gold ones
    assert len(alerts) == 1, alerts
    (alert,) = alerts
    assert alert["topic"] == "BOLT" and alert["rule"] == "neg-share-30m"
    assert manifest["surge_start"] <= alert["opened_at"] <= manifest["surge_start"] + 1800
    assert alert["state"] == "resolved" and alert["resolved_at"] > manifest["surge_end"]
    assert 'graftkit_monitor_alerts_total{event="opened",rule="neg-share-30m",topic="BOLT"} 1.0' in metrics
    assert f"graftkit_monitor_items_ingested_total {float(manifest['items'])}" in metrics


def test_replaying_again_stores_nothing_twice(run, stream, tmp_path):
    path, manifest = stream
    with _monitor(run, tmp_path / "m.db") as mon:
        mon.run(replay(path, mon.cfg.fields))
    before = _tables(tmp_path / "m.db")
    with _monitor(run, tmp_path / "m.db") as mon:
        stats = mon.run(replay(path, mon.cfg.fields))
    assert stats["ingested"] == 0 and stats["duplicates"] == manifest["items"]
    assert _tables(tmp_path / "m.db") == before


def _cli(config: Path, *args: str) -> list[str]:
    code = ("import sys; from graftkit.cli.apps import monitor_app; from graftkit.cli.main import friendly; "
            "monitor_app(friendly)(sys.argv[1:])")
    return [sys.executable, "-c", code, "run", str(config), *args]


def test_kill_9_during_replay_then_restart_gives_the_uninterrupted_rows_and_alerts(run, stream, tmp_path):
    path, manifest = stream
    with _monitor(run, tmp_path / "full.db") as mon:
        mon.run(replay(path, mon.cfg.fields))
    cfg_file = tmp_path / "monitor.yaml"
    cfg_file.write_text(yaml.safe_dump(monitor_tree(run, f"sqlite:///{tmp_path / 'killed.db'}")))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # speed 5000: the 20 h stream takes ~15 s, so the kill lands mid-replay
    proc = subprocess.Popen(_cli(cfg_file, "--replay", str(path), "--speed", "5000"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "killed.db"
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline and stored < manifest["items"] // 3:
        time.sleep(0.2)
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    stored = conn.execute("select count(*) from monitor_items").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as conn:
        at_kill = conn.execute("select count(*) from monitor_items").fetchone()[0]
    assert 0 < at_kill < manifest["items"], "the kill must land mid-replay"
    done = subprocess.run(_cli(cfg_file, "--replay", str(path)), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["duplicates"] == at_kill
    assert _tables(db) == _tables(tmp_path / "full.db")


def test_malformed_items_are_skipped_counted_and_stored_with_their_line(run, tmp_path):
    path = tmp_path / "bad.jsonl"
    good = {"id": "ok", "time": "2024-03-04T00:00:00Z", "text": "Net sales increased .", "entity": "ACME"}
    path.write_text("\n".join([json.dumps(good), "{oops", json.dumps({"id": "x", "text": "no time"}),
                               json.dumps({"id": "y", "time": 5, "text": ""})]) + "\n")
    with _monitor(run, tmp_path / "m.db") as mon:
        stats = mon.run(replay(path, mon.cfg.fields))
        again = mon.run(replay(path, mon.cfg.fields))
    assert stats["ingested"] == 1 and stats["skipped"] == 3
    rows = _tables(tmp_path / "m.db")["monitor_skipped"]
    assert [(r[1], r[2].split(" (")[0]) for r in rows] == [
        ("bad.jsonl:2", "unparseable JSON"), ("bad.jsonl:3", "missing time"), ("bad.jsonl:4", "empty text")]
    assert again["skipped"] == 6 and len(rows) == 3  # counted again in the run, stored once


def _surge_items(n: int = 400) -> list[Item]:
    """A baseline of neutral items then a burst of negatives for one topic (opens one alert)."""
    from monitor_helpers import NEGATIVE, NEUTRAL

    out = [Item(60.0 * i, "t", f"b{i}", NEUTRAL[i % 4], "ACME") for i in range(n)]
    out += [Item(60.0 * n + 20.0 * i, "t", f"s{i}", NEGATIVE[i % 4], "ACME") for i in range(60)]
    return out


class _Hook:
    """A webhook receiver: the first ``fail`` calls answer 500 (or hang past the timeout), then 200."""

    def __init__(self, fail: int, hang: bool = False):
        self.calls: list[dict] = []
        self.app = FastAPI()

        @self.app.post("/hook")
        async def hook(request: Request):
            self.calls.append(await request.json())
            if len(self.calls) <= fail:
                if hang:
                    await asyncio.sleep(1.0)
                return JSONResponse({"error": "down"}, status_code=500)
            return {"ok": True}


@pytest.mark.parametrize("hang", [False, True])
def test_webhook_is_retried_then_sent(run, tmp_path, hang):
    hook = _Hook(fail=2, hang=hang)
    with serving(hook.app) as url:
        webhook = {"url": url + "/hook", "timeout_s": 0.3, "retries": 3, "backoff_s": 0.01}
        with _monitor(run, tmp_path / "m.db", delivery={"webhook": webhook}) as mon:
            mon.run(iter(_surge_items()))
    rows = _deliveries(tmp_path / "m.db")
    assert [(r["event"], r["status"], r["attempts"]) for r in rows][0] == ("opened", "sent", 3)
    assert hook.calls[-1]["event"] == "opened" and hook.calls[-1]["alert"]["topic"] == "ACME"


def test_dead_webhook_is_recorded_and_scoring_goes_on(run, tmp_path):
    webhook = {"url": "http://127.0.0.1:9/hook", "timeout_s": 0.2, "retries": 2, "backoff_s": 0.01}
    with _monitor(run, tmp_path / "m.db", delivery={"webhook": webhook}) as mon:
        stats = mon.run(iter(_surge_items()))
    assert stats["ingested"] == 460 and stats["alerts_opened"] == 1
    (row,) = [r for r in _deliveries(tmp_path / "m.db") if r["event"] == "opened"]
    assert row["status"] == "failed" and row["attempts"] == 2 and "Connect" in row["error"]


def _deliveries(db: Path) -> list[dict]:
    eng = create_engine(f"sqlite:///{db}")
    with eng.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(st.deliveries).order_by(st.deliveries.c.id))]
    eng.dispose()
    return rows


def test_locked_database_is_retried_then_a_clear_error_and_nothing_lost(run, tmp_path):
    db = tmp_path / "m.db"
    items = _surge_items(40)
    with _monitor(run, db, store_retries=2, store_backoff_s=0.05) as mon:
        mon.ingest(items[:20])
        lock = sqlite3.connect(db, timeout=0.1, isolation_level=None, check_same_thread=False)
        lock.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError, match="could not .* after 2 tries.*run the same command again"):
            mon.ingest(items[20:30])
        lock.execute("ROLLBACK")
        threading.Timer(0.3, lambda: lock.execute("ROLLBACK")).start()
        lock.execute("BEGIN EXCLUSIVE")  # released while the monitor retries: the batch then goes through
        mon.cfg.store_retries = 6
        assert mon.ingest(items[20:30])["ingested"] == 10
    lock.close()
    assert len(_tables(db)["monitor_items"]) == 30


def test_unusable_store_url_is_a_clear_error(run, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot create the folder"):
        _monitor(run, tmp_path / "file" / "m.db")
    with pytest.raises(StoreError, match="not a SQLAlchemy URL"):
        Monitor(monitor_config_from_dict(monitor_tree(run, "nonsense")))


def test_report_table_and_trend_png(run, stream, tmp_path):
    from typer.testing import CliRunner

    from graftkit.cli.apps import monitor_app
    from graftkit.cli.main import friendly

    path, manifest = stream
    cfg_file = tmp_path / "monitor.yaml"
    cfg_file.write_text(yaml.safe_dump(monitor_tree(run, f"sqlite:///{tmp_path / 'm.db'}")))
    cli = monitor_app(friendly)
    res = CliRunner().invoke(cli, ["run", str(cfg_file), "--replay", str(path)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["report", str(cfg_file), "--since", "10h", "--plots", str(tmp_path / "plots"),
                                   "--bucket", "30m"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "BOLT" in res.output and "neg-share-30m" in res.output and "resolved" in res.output
    png = tmp_path / "plots" / "trend_BOLT.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = CliRunner().invoke(cli, ["report", str(cfg_file), "--since", "yesterday-ish"])
    assert res.exit_code == 2 and "duration like 24h" in res.output
