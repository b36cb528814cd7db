"""Run folders are published whole: training builds ``.<name>.partial`` and renames it into place when complete,
so a failed run leaves the previous run intact and keeps its checkpoints for --resume; `merge` replaces its
output only with a complete new one; a second writer of the same folder gets a clear error."""
from __future__ import annotations

import subprocess
import sys

import pytest
from transformers import TrainerCallback

from conftest import REPO, run_config, write_csv
from graftkit.errors import RunFolderError
from graftkit.export import merge
from graftkit.io import sole_writer, staging_path
from graftkit.modeling.run_folder import RunFolder
from graftkit.train.session import prepare_run_dir
from graftkit.train.trainer import train

ROWS = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
        ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"]] * 4


class _FailAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_begin(self, args, state, control, **kw):
        if state.global_step >= self.step:
            raise RuntimeError("the machine went away")


def _cfg(tmp_path, model_dir, **sections):
    return run_config(tmp_path, model_dir, write_csv(tmp_path / "train.csv", ROWS), **sections)


def _leftovers(cfg) -> list[str]:
    """What a run left beside its folder, less the empty lock file (filelock keeps it: waiters share its inode)."""
    return sorted(p.name for p in cfg.run_dir.parent.iterdir()
                  if p.name not in (cfg.run_dir.name, f".{cfg.run_dir.name}.lock"))


def test_failed_retrain_keeps_the_finished_run_and_resume_continues_it(tmp_path, tiny_model_dir):
    cfg = _cfg(tmp_path, tiny_model_dir, train={"epochs": 3, "eval_strategy": "steps", "eval_steps": 2})
    first = train(cfg, log=lambda m: None)
    assert first.path == cfg.run_dir and first.is_complete and _leftovers(cfg) == []
    weights = (first.path / "model.safetensors").read_bytes()
    (first.path / "old-run.txt").write_text("from the first run")  # tells the two runs apart

    with pytest.raises(RuntimeError, match="went away"):
        train(cfg, overwrite=True, extra_callbacks=[_FailAt(3)], log=lambda m: None)
    assert first.is_complete and (first.path / "old-run.txt").is_file()  # the finished run is untouched
    assert (first.path / "model.safetensors").read_bytes() == weights
    assert (staging_path(cfg.run_dir) / "checkpoints" / "checkpoint-2").is_dir()  # what was saved is kept

    logs = []
    run = train(cfg, resume=True, log=logs.append)
    assert any("resuming from" in m and "checkpoint-2" in m for m in logs)
    assert run.path == cfg.run_dir and run.is_complete and not (run.path / "old-run.txt").exists()
    assert _leftovers(cfg) == []  # no staging folder or old copy left behind
    assert "graftkit predict " + str(cfg.run_dir) in run.card.read_text()  # the card names the published path


def test_a_second_writer_of_a_run_gets_a_clear_error(tmp_path, tiny_model_dir):
    cfg = _cfg(tmp_path, tiny_model_dir)
    with sole_writer(cfg.run_dir):
        with pytest.raises(RunFolderError, match=f"another process is writing {cfg.run_dir}"):
            train(cfg, log=lambda m: None)
    assert _leftovers(cfg) == [] and not cfg.run_dir.exists()


def test_the_lock_holds_across_processes(tmp_path):
    target = tmp_path / "runs" / "t"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom graftkit.io import sole_writer\n"
                               f"with sole_writer({str(target)!r}):\n    print('held', flush=True)\n"
                               "    sys.stdin.readline()\n"],
                              cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError, match="another process is writing"):
            with sole_writer(target):
                pass
    finally:
        holder.communicate("\n", timeout=30)
    with sole_writer(target):  # released with the other process
        pass


def test_resume_adopts_an_unfinished_run_written_in_place(tmp_path, tiny_model_dir):
    cfg = _cfg(tmp_path, tiny_model_dir)
    run, _ = prepare_run_dir(cfg, resume=False, overwrite=False)
    run.path.rename(cfg.run_dir)  # the layout of an older graftkit: the unfinished run at its final path
    again, checkpoint = prepare_run_dir(cfg, resume=True, overwrite=False, log=lambda m: None)
    assert again.path == staging_path(cfg.run_dir) and again.config.is_file() and not cfg.run_dir.exists()


@pytest.fixture
def lora_run(tmp_path, tiny_model_dir):
    cfg = _cfg(tmp_path, tiny_model_dir, peft={"method": "lora", "r": 4}, train={"epochs": 1})
    return train(cfg, log=lambda m: None)


def test_merge_replaces_its_output_only_when_the_new_one_is_complete(lora_run, monkeypatch):
    out = merge.merge_run(lora_run.path)
    (out / "old-merge.txt").write_text("from the first merge")
    write = merge._write_merged

    def dies_half_way(model, run, folder):
        model.save_pretrained(str(folder))
        raise OSError("disk full")

    monkeypatch.setattr(merge, "_write_merged", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        merge.merge_run(lora_run.path)
    assert RunFolder(out).is_complete and (out / "old-merge.txt").is_file() and (out / "tokenizer.json").is_file()

    with sole_writer(out), pytest.raises(RunFolderError, match="another process is writing"):
        merge.merge_run(lora_run.path)
    monkeypatch.setattr(merge, "_write_merged", write)
    assert merge.merge_run(lora_run.path) == out
    assert RunFolder(out).is_complete and not (out / "old-merge.txt").exists()
    # no staging or old copy left (the empty lock file stays: filelock's waiters share its inode)
    assert sorted(p.name for p in lora_run.path.iterdir() if p.name.startswith(".merged")) == [".merged.lock"]
