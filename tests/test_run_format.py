"""Run-folder format versions: a folder written before versions (tests/assets/run_v1, format 1) still
loads and predicts what it predicted then; a later key rename goes through one new migration step;
every writer stamps today's version; older ensemble.json and config trees are migrated in one place."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from graftkit.errors import ConfigError
from graftkit.inference.predictor import Predictor, load_run_config
from graftkit.modeling import run_format
from graftkit.modeling.run_folder import RunFolder
from graftkit.modeling.run_format import FORMAT_VERSION, VERSION_KEY, migrate_config
from graftkit.tasks.run_config import config_from_dict

RUN_V1 = Path(__file__).parent / "assets" / "run_v1"
EXPECTED = json.loads((RUN_V1 / "expected_predictions.json").read_text(encoding="utf-8"))
#: the fixture's files a loader reads (its expected predictions stay behind)
RUN_FILES = [p.name for p in RUN_V1.iterdir() if p.name != "expected_predictions.json"]


def copy_run(dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in RUN_FILES:
        shutil.copy2(RUN_V1 / name, dst / name)
    return dst


def read_config(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))


def write_config(run_dir: Path, tree: dict) -> None:
    (run_dir / "config.yaml").write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")


def assert_predicts_as_stored(run_dir: Path) -> None:
    preds = Predictor(run_dir).predict([e["input"] for e in EXPECTED])
    for want, got in zip(EXPECTED, preds):
        got = got.to_dict()
        assert got["label"] == want["label"], want["input"]
        assert got["score"] == pytest.approx(want["score"], abs=1e-6)
        assert got["scores"] == pytest.approx(want["scores"], abs=1e-6)


def test_the_fixture_is_format_1_in_the_old_shape():
    tree = read_config(RUN_V1)
    assert VERSION_KEY not in tree and tree["data"]["scheme"] == "auto" and tree["data"]["tag_column"] == -1
    # validated as it is, today's model refuses the old keys: the migration is what makes it load
    with pytest.raises(ConfigError, match=r"data\.tag_column: unknown key"):
        config_from_dict(tree, "run_v1")


def test_a_format_1_run_folder_loads_and_predicts_what_it_predicted_then():
    cfg = load_run_config(RunFolder(RUN_V1))
    assert cfg.task.type == "classification" and cfg.data.max_length == 16
    assert not hasattr(cfg.data, "tag_column")
    assert_predicts_as_stored(RUN_V1)


def _max_len_is_max_length(trees: run_format.RunTrees) -> None:
    """A hypothetical step: format 2 called it data.max_len, format 3 data.max_length."""
    data = trees.config.get("data") or {}
    if "max_len" in data:
        data["max_length"] = data.pop("max_len")
        trees.notes.append("data.max_len is data.max_length now")


def test_a_renamed_key_needs_only_a_new_step(tmp_path, monkeypatch):
    monkeypatch.setattr(run_format, "FORMAT_VERSION", 3)
    monkeypatch.setattr(run_format, "STEPS", run_format.STEPS + [_max_len_is_max_length])
    old = copy_run(tmp_path / "v2")
    tree, _ = migrate_config(read_config(RUN_V1))
    tree["data"]["max_len"] = tree["data"].pop("max_length")
    write_config(old, {VERSION_KEY: 2, **tree})
    assert load_run_config(RunFolder(old)).data.max_length == 16
    assert_predicts_as_stored(old)
    # a format-1 folder goes through both steps
    assert load_run_config(RunFolder(RUN_V1)).data.max_length == 16
    assert run_format.stamped({})[VERSION_KEY] == 3


def test_a_newer_format_is_refused_naming_it(tmp_path):
    run = copy_run(tmp_path / "new")
    write_config(run, {VERSION_KEY: FORMAT_VERSION + 1, **read_config(RUN_V1)})
    with pytest.raises(ConfigError, match=rf"format {FORMAT_VERSION + 1}, newer than this graftkit reads"):
        load_run_config(RunFolder(run))
    write_config(run, {VERSION_KEY: "two", **read_config(RUN_V1)})
    with pytest.raises(ConfigError, match="format_version must be a whole number"):
        load_run_config(RunFolder(run))


def test_format_1_ner_keys_move_to_the_task_section():
    tree = read_config(RUN_V1)
    tree["task"] = {"type": "ner"}
    tree["data"].update(tag_column=2, scheme="IOB1", strip_segment_digit=True, repair_tags=True)
    migrated, notes = migrate_config(tree)
    cfg = config_from_dict(migrated)
    assert (cfg.task.tag_column, cfg.task.file_scheme, cfg.task.strip_segment_digit, cfg.task.repair_tags) \
        == (2, "IOB1", True, True)
    assert len(notes) == 4 and any("data.scheme is task.file_scheme now" in n for n in notes)
    assert tree["data"]["scheme"] == "IOB1"  # the caller's tree is left as it was
    # another task never read them: defaults go silently, a set value with a note
    plain, notes = migrate_config(read_config(RUN_V1))
    assert "tag_column" not in plain["data"] and notes == []
    tree = read_config(RUN_V1)
    tree["data"]["repair_tags"] = True
    assert "dropped" in migrate_config(tree)[1][0]


def test_a_format_1_ensemble_with_a_described_combine_averages(tmp_path):
    ens = copy_run(tmp_path / "ens")
    for i in range(2):
        copy_run(ens / "members" / str(i))
    (ens / "ensemble.json").write_text(json.dumps({"members": ["members/0", "members/1"],
                                                   "combine": "mean of the members' probabilities"}))
    assert RunFolder(ens).ensemble_spec()["combine"] == "mean"
    assert_predicts_as_stored(ens)  # two copies of one model average to that model


def test_writers_stamp_todays_format(tmp_path):
    from graftkit.export.prune import prune_run
    from graftkit.train.ensemble import build_ensemble
    from graftkit.train.session import check_same_run, prepare_run_dir

    build_ensemble([copy_run(tmp_path / "a"), copy_run(tmp_path / "b")], tmp_path / "ens", log=lambda m: None)
    assert read_config(tmp_path / "ens")[VERSION_KEY] == FORMAT_VERSION
    assert VERSION_KEY not in read_config(tmp_path / "ens" / "members" / "0")  # a member keeps its own
    assert RunFolder(tmp_path / "ens").ensemble_spec()["combine"] == "mean"
    prune_run(RUN_V1, tmp_path / "pruned", amount=0.5, log=lambda m: None)
    assert read_config(tmp_path / "pruned")[VERSION_KEY] == FORMAT_VERSION
    cfg = load_run_config(RunFolder(RUN_V1)).model_copy(update={"output_dir": str(tmp_path / "runs")})
    run, _ = prepare_run_dir(cfg, resume=False, overwrite=False, log=lambda m: None)
    assert read_config(run.path)[VERSION_KEY] == FORMAT_VERSION
    # a run started by format-1 code resumes: its saved config is migrated before it is compared
    check_same_run((RUN_V1 / "config.yaml").read_text(encoding="utf-8"), cfg, run)
