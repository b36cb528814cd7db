"""Issue 24, defects 5-8: each test fails on the code before its fix (monitor webhook, feeds, follow, dashboard;
distributed errors; locks, resume fingerprints, pre-training reuse, NUL bytes, process-wide toggles; the
libraries that replace hand-written retries and checksums)."""
from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from filelock import FileLock
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool

from conftest import REPO, run_config, write_csv
from graftkit.apps.monitor import sources
from graftkit.apps.monitor.config import SourceConfig, WebhookConfig
from graftkit.apps.monitor.deliver import WebhookSender
from graftkit.apps.monitor.store import METADATA, item_topics, items
from graftkit.apps.store import StoreError, with_retry
from graftkit.data.readers import read_csv
from graftkit.errors import GraftkitError
from graftkit.inference.predict_file import iter_items, run_fingerprint
from graftkit.modeling.load import quiet_missing_head
from graftkit.modeling.run_folder import RunFolder
from graftkit.serve.apps import create_monitor_app
from graftkit.serve.pii import find_pii
from graftkit.serve.settings import ServeConfig
from graftkit.tasks.run_config import dump_config
from graftkit.train import distributed
from graftkit.train import pretrain as pretrain_mod

SECRET = "/services/T000/B000/XXXXsecretXXXX"


# --- 5. monitor --------------------------------------------------------------------------------------------

def _sender(url: str, answer: int, retries: int = 3) -> tuple[WebhookSender, list[float]]:
    """A sender whose HTTP client answers ``answer`` (only _post is under test: no thread, no store)."""
    sleeps: list[float] = []
    sender = WebhookSender.__new__(WebhookSender)
    sender.cfg = WebhookConfig(url=url, retries=retries, backoff_s=0.5, timeout_s=1.0)
    sender.client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(answer)))
    sender.sleep = sleeps.append
    return sender, sleeps


def test_webhook_failures_log_the_host_but_not_the_secret_path(caplog):
    sender, sleeps = _sender("https://hooks.slack.example" + SECRET, answer=500)
    with caplog.at_level(logging.WARNING, logger="graftkit.monitor"):
        status, attempts, error = sender._post({"event": "opened"})
    assert (status, attempts) == ("failed", 3) and error.startswith("HTTP 500")
    assert sleeps == [0.5, 1.0]  # backoff_s * 2**(n-1) before retry n
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "https://hooks.slack.example" in logged and "3/3" in logged
    assert "secret" not in logged and "/services" not in logged


def test_webhook_that_recovers_counts_its_attempts():
    calls = []

    def answer(request):
        calls.append(request)
        return httpx.Response(200 if len(calls) == 2 else 503)

    sender, sleeps = _sender("https://hooks.example" + SECRET, answer=200)
    sender.client = httpx.Client(transport=httpx.MockTransport(answer))
    assert sender._post({"event": "opened"}) == ("sent", 2, None) and sleeps == [0.5]


def test_rss_fetch_is_bounded_by_a_timeout():
    with socket.socket() as server:  # accepts connections (the kernel does) but never answers
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/feed.xml"
        t0 = time.perf_counter()
        out = list(sources.rss(url, timeout_s=0.3))
    assert time.perf_counter() - t0 < 2.0
    assert len(out) == 1 and isinstance(out[0], sources.Skip) and "unreadable feed" in out[0].reason
    assert sources.RSS_TIMEOUT_S > 0


def test_follow_splits_tsv_rows_on_tabs_like_its_header(tmp_path):
    path = tmp_path / "feed.tsv"
    path.write_text("time\tid\ttext\tentity\n2024-01-01T00:00:00Z\ta1\tShares fall, again\tACME\n", encoding="utf-8")
    out = [x for x in sources.follow(path, SourceConfig(), poll_s=0.01, stop=lambda: True) if x is not sources.FLUSH]
    assert len(out) == 1 and isinstance(out[0], sources.Item), out
    assert (out[0].id, out[0].text, out[0].entity) == ("a1", "Shares fall, again", "ACME")


class _StoreMonitor:
    """The monitor app's view of a monitor: a store with two items ten days apart."""

    cfg = type("Cfg", (), {"fields": SourceConfig()})()
    metrics = type("M", (), {"render": lambda self: (b"", "text/plain")})()

    def __init__(self):
        # one in-memory database for every thread (the route reads it from a worker thread)
        self.engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
        METADATA.create_all(self.engine)
        with self.engine.begin() as conn:
            for n, t in enumerate((0.0, 10 * 86400.0)):
                conn.execute(items.insert().values(**_item_row(f"i{n}", t)))
                conn.execute(item_topics.insert().values(item_id=f"i{n}", topic="ACME", time=t, negative=False))

    def close(self):
        self.engine.dispose()


def _item_row(item_id: str, t: float) -> dict:
    return {"id": item_id, "time": t, "source": "s", "text": "x", "entity": None, "label": "neutral",
            "negative_score": 0.0, "negative": False, "ingested_at": t}


@pytest.mark.parametrize("bucket", ["0s", "1s", "365d", "soon"])
def test_dashboard_bucket_outside_its_range_is_a_422_naming_it(bucket):
    settings = ServeConfig(api_keys=["k" * 32], log_level="warning")
    with TestClient(create_monitor_app(None, settings, build=_StoreMonitor), raise_server_exceptions=False) as client:
        resp = client.get("/v1/monitor/summary", params={"bucket": bucket, "since": ""},
                          headers={"X-API-Key": "k" * 32})
    assert resp.status_code == 422 and "bucket" in resp.text


def test_dashboard_bucket_too_fine_for_the_stored_span_is_a_422():
    settings = ServeConfig(api_keys=["k" * 32], log_level="warning")
    with TestClient(create_monitor_app(None, settings, build=_StoreMonitor), raise_server_exceptions=False) as client:
        fine = client.get("/v1/monitor/summary", params={"bucket": "1m", "since": ""}, headers={"X-API-Key": "k" * 32})
        ok = client.get("/v1/monitor/summary", params={"bucket": "1h", "since": ""}, headers={"X-API-Key": "k" * 32})
    assert fine.status_code == 422 and "bucket" in fine.text  # 10 days of 1-minute buckets: 14,400 points
    assert ok.status_code == 200 and len(ok.json()["trends"][0]["count"]) == 241


# --- 6. distributed training -------------------------------------------------------------------------------

def _two_ranks(monkeypatch, main: bool, sent: list) -> None:
    import accelerate
    import accelerate.utils

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(accelerate, "PartialState", lambda cpu: type("S", (), {"is_main_process": main})())

    def broadcast(box):
        if main:
            sent.append(list(box))
        else:
            box[0] = ("error", GraftkitError("the main process failed: ValueError: boom"))

    monkeypatch.setattr(accelerate.utils, "broadcast_object_list", broadcast)


def test_any_error_on_the_main_rank_reaches_the_other_ranks(monkeypatch):
    sent: list = []
    _two_ranks(monkeypatch, main=True, sent=sent)

    def fails():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        distributed.run_on_main(fails)
    assert len(sent) == 1 and sent[0][0][0] == "error" and "ValueError: boom" in str(sent[0][0][1])
    _two_ranks(monkeypatch, main=False, sent=sent)
    with pytest.raises(GraftkitError, match="main process failed: ValueError"):
        distributed.run_on_main(fails)


# --- 7. smaller ones ---------------------------------------------------------------------------------------

def test_graftkit_io_imports_without_fcntl():
    code = "import sys; sys.modules['fcntl'] = None; import graftkit.io; print('ok')"
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-500:]


def test_metrics_updates_wait_for_the_lock(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.update_metrics(test={"f1": 0.5})
    with FileLock(run.path / ".metrics.json.lock"):  # another process is updating metrics.json
        writer = threading.Thread(target=run.update_metrics, kwargs={"evaluations": {"x.csv": {}}})
        writer.start()
        writer.join(0.3)
        assert writer.is_alive() and "evaluations" not in run.read_metrics()
    writer.join(5)
    assert run.read_metrics() == {"test": {"f1": 0.5}, "evaluations": {"x.csv": {}}}


def test_two_evaluations_added_at_once_are_both_kept(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    with FileLock(run.path / ".metrics.json.lock"):  # both wait, then each reads what the other wrote
        writers = [threading.Thread(target=run.add_metrics_entry, args=("evaluations", f"{n}.csv", {"f1": n}))
                   for n in range(2)]
        for w in writers:
            w.start()
    for w in writers:
        w.join(5)
    assert run.read_metrics() == {"evaluations": {"0.csv": {"f1": 0}, "1.csv": {"f1": 1}}}


def test_evaluating_a_run_keeps_its_prediction_fingerprint(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    for name in ("model.safetensors", "config.yaml", "labels.json", "tokenizer.json"):
        (run.path / name).write_text(name)
    predictor = type("P", (), {"run": run, "backend_name": "torch"})()
    before = run_fingerprint(predictor)
    run.update_metrics(evaluations={"x.csv": {"f1": 1.0}})  # what `graftkit evaluate RUN x.csv` writes
    (run.path / "eval" / "x").mkdir(parents=True)
    (run.path / "eval" / "x" / "report.json").write_text("{}")
    assert run_fingerprint(predictor) == before
    (run.path / "model.safetensors").write_text("retrained")
    assert run_fingerprint(predictor) != before


@pytest.fixture
def pretrain_cfg(tmp_path):
    data = write_csv(tmp_path / "train.csv", [["good", "pos"], ["bad", "neg"]] * 4)
    return lambda **pre: run_config(tmp_path, str(tmp_path / "base-model"), data,
                                    pretrain={"epochs": 1, **pre})


def test_a_finished_pretraining_stage_is_reused_only_while_it_matches(pretrain_cfg, monkeypatch):
    texts = ["good", "bad"]
    trained = []

    def fake_train(stage_cfg, resume, overwrite, log):
        trained.append(overwrite)
        run = RunFolder(Path(stage_cfg.output_dir) / stage_cfg.name)
        run.path.mkdir(parents=True, exist_ok=True)
        run.config.write_text(dump_config(stage_cfg), encoding="utf-8")
        run.mark_complete()
        return run

    monkeypatch.setattr(pretrain_mod, "_texts", lambda cfg: list(texts))
    monkeypatch.setattr(pretrain_mod, "train", fake_train)
    logs: list[str] = []
    pretrain_mod.pretrain(pretrain_cfg(), log=logs.append)
    pretrain_mod.pretrain(pretrain_cfg(), log=logs.append)
    assert trained == [False] and "reusing" in logs[-1]
    pretrain_mod.pretrain(pretrain_cfg(epochs=2), log=logs.append)  # another pre-training setting
    assert trained == [False, True] and any("'train' section" in m for m in logs)
    texts.append("new training text")  # the training data changed
    pretrain_mod.pretrain(pretrain_cfg(epochs=2), log=logs.append)
    assert trained == [False, True, True] and any("other training texts" in m for m in logs)


def test_finetuning_after_pretraining_records_an_absolute_base(pretrain_cfg, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    cfg = pretrain_mod.finetune_config(pretrain_cfg(), Path("runs") / "t-pretrain")
    assert Path(cfg.model.name_or_path).is_absolute()
    assert Path(cfg.model.name_or_path) == tmp_path / "runs" / "t-pretrain"


def test_csv_nul_bytes_are_removed_with_a_warning_naming_file_and_line(tmp_path, caplog):
    path = tmp_path / "nul.csv"
    path.write_bytes(b"text,label\ngood,pos\nba\x00d,neg\n")
    with caplog.at_level(logging.WARNING, logger="graftkit.data"):
        rows = read_csv(path)
    assert [r.values["text"] for r in rows] == ["good", "bad"]
    assert any(f"{path}:3:" in r.getMessage() and "NUL" in r.getMessage() for r in caplog.records)


def test_a_finished_csv_read_does_not_lower_the_field_limit_under_another(tmp_path):
    small = write_csv(tmp_path / "a.csv", [["one"], ["two"]], header=("text",))
    big = write_csv(tmp_path / "b.csv", [["short"], ["x" * 200_000]], header=("text",))
    first, second = iter_items(small, "text", None), iter_items(big, "text", None)
    next(first)
    next(second)
    list(first)  # finishes (and, before the fix, put the 128 KiB limit back)
    assert len(next(second).value) == 200_000


def test_quieting_transformers_on_one_thread_leaves_other_threads_logging():
    logger = logging.getLogger("transformers.modeling_utils")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    level = logger.level
    try:
        with quiet_missing_head():
            logger.warning("from the loading thread")
            other = threading.Thread(target=logger.warning, args=("from another thread",))
            other.start()
            other.join()
        logger.warning("after the block")
    finally:
        logger.removeHandler(handler)
    assert seen == ["from another thread", "after the block"] and logger.level == level


# --- 8. kept libraries -------------------------------------------------------------------------------------

def test_store_retries_back_off_then_name_the_store(caplog):
    tries, sleeps = [], []

    def flaky():
        tries.append(1)
        if len(tries) < 3:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return "done"

    with caplog.at_level(logging.WARNING, logger="graftkit.apps.store"):
        assert with_retry(flaky, "sqlite:///m.db", retries=4, backoff_s=0.25, sleep=sleeps.append) == "done"
    assert sleeps == [0.25, 0.5] and "retry 1/3 in 0.2s" in caplog.text and "database is locked" in caplog.text

    def down():
        raise OperationalError("SELECT", {}, Exception("unreachable"))

    with pytest.raises(StoreError, match=r"could not read after 2 tries \(unreachable\)"):
        with_retry(down, "sqlite:///m.db", retries=2, backoff_s=0.0, what="read", sleep=sleeps.append)


def test_pii_checks_each_country_rule_not_only_the_checksum():
    # mod 97 holds, but a German IBAN has 22 characters, not 19
    assert not [s for s in find_pii("ref DE41370400440532013 ok") if s[2] == "IBAN"]
    assert [t for *_, t in find_pii("IBAN DE89 3704 0044 0532 0130 00")] == ["IBAN"]
    # 219-09-9999 is the SSA's advertising number: never issued to anyone
    assert not [s for s in find_pii("see 219-09-9999 in the brochure") if s[2] == "ID"]
    assert [t for *_, t in find_pii("SSN 123-45-6789")] == ["ID"]
