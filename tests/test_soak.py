"""The short soak (bench/soak.py: 45 s of load, about a minute in all, on tiny models): four real services under
a mixed load, a SIGHUP reload, a killed worker and a burst over the queue limit; then its pass criteria."""
from __future__ import annotations

import json
import sys

import pytest
from assistant_helpers import intent_run, retrieval_run
from conftest import REPO
from deploy_helpers import classifier_run
from generation_helpers import one_step_decoder_run
from monitor_helpers import sentiment_run

sys.path.insert(0, str(REPO))
from bench.soak import SoakSetup, run_soak, write_app_configs  # noqa: E402


@pytest.mark.slow
def test_services_hold_under_a_mixed_load_with_reload_kill_and_burst(tmp_path_factory, tiny_model_dir, tmp_path):
    base = tmp_path_factory.getbasetemp()
    configs = write_app_configs(tmp_path, intent_run(base / "assistant", tiny_model_dir),
                                retrieval_run(base / "assistant", tiny_model_dir),
                                sentiment_run(base / "monitor", tiny_model_dir))
    setup = SoakSetup(classifier_run(base / "deploy", tiny_model_dir),
                      one_step_decoder_run(tmp_path / "decoder", {"max_new_tokens": 8}), *configs, work=tmp_path,
                      max_queue=8)
    res = run_soak(setup, seconds=45, clients={"predict": 2, "generate": 1, "chat": 1, "ingest": 1})
    statuses = res["statuses"]
    assert set(statuses) == {"predict", "generate", "chat", "ingest"}
    assert all(c.get("200", 0) > 0 for c in statuses.values()), statuses
    assert statuses["predict"].get("503", 0) + statuses["generate"].get("503", 0) > 0, statuses  # the burst
    (tmp_path / "soak.json").write_text(json.dumps(res, default=str))  # kept beside the run for a failure's post-mortem
    assert res["unexpected_statuses"] == {}, res
    assert res["stray_connection_errors"] == [], res
    assert res["chat_turns"] > 0 and res["missing_turns"] == [], res
    assert res["ingested_items"] > 0 and res["missing_items"] == [], res
    assert res["rss_growth"] and all(g < 0.10 for g in res["rss_growth"].values()), res["rss_growth"]
    threads = res["threads_before_after_reload"]
    assert threads["generate"][0] == threads["generate"][1] != [], threads  # reloaded in its own process
    assert len(threads["predict"][1]) == 2 and max(threads["predict"][1]) <= max(threads["predict"][0]), threads
    marks = res["marks"]
    assert len(marks["predict_pids_at_end"]) == 2 and marks["killed_pid"] not in marks["predict_pids_at_end"], marks
    assert res["passed"]
