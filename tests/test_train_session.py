"""The run folder of a training run: --resume refuses a changed training setup, and signal handlers
installed for training are restored on every exit path."""
from __future__ import annotations

import signal

import pytest
from transformers import TrainerCallback

from conftest import run_config, write_csv
from graftkit.errors import GraftkitError
from graftkit.train.session import prepare_run_dir
from graftkit.train.trainer import train

ROWS = [["good film", "pos"], ["bad film", "neg"]] * 8


def _cfg(tmp_path, model_dir, **sections):
    return run_config(tmp_path, model_dir, write_csv(tmp_path / "train.csv", ROWS), **sections)


@pytest.mark.parametrize("section, change", [("train", {"train": {"learning_rate": 0.5}}),
                                             ("peft", {"peft": {"method": "lora"}}),
                                             ("augment", {"augment": {"copies": 2}})])
def test_resume_refuses_a_changed_training_section(tmp_path, tiny_model_dir, section, change):
    prepare_run_dir(_cfg(tmp_path, tiny_model_dir), resume=False, overwrite=False)
    with pytest.raises(GraftkitError, match=f"--resume: the '{section}' section differs"):
        prepare_run_dir(_cfg(tmp_path, tiny_model_dir, **change), resume=True, overwrite=False)


def test_resume_accepts_changed_reporting_and_says_when_it_starts_over(tmp_path, tiny_model_dir):
    prepare_run_dir(_cfg(tmp_path, tiny_model_dir), resume=False, overwrite=False)
    said = []
    run, checkpoint = prepare_run_dir(_cfg(tmp_path, tiny_model_dir, eval={"plots": True}), resume=True,
                                      overwrite=False, log=said.append)
    assert checkpoint is None and any("no complete checkpoint" in m and "starts over" in m for m in said)


class _Boom(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        raise RuntimeError("boom")


def test_signal_handlers_are_restored_when_training_raises(tmp_path, tiny_model_dir):
    def mine(signum, frame):
        return None

    before = signal.signal(signal.SIGTERM, mine)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            train(_cfg(tmp_path, tiny_model_dir), extra_callbacks=[_Boom()], log=lambda m: None)
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)
