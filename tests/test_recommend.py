"""Recommender: MIND reader errors, per-impression metrics, the ranking task trained on generated MIND files,
baselines, and `graftkit recommend` with a feature blend."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_config
from typer.testing import CliRunner

from graftkit.apps.recommend.evaluate import (
    compare,
    popularity_counts,
    score_popularity,
)
from graftkit.apps.recommend.ranker import blend, parse_weights
from graftkit.apps.recommend.synthetic import write_mind
from graftkit.errors import ConfigError, DataError
from graftkit.data.mind import read_mind
from graftkit.report.ranking import impression_metrics, mind_metrics


def test_impression_metrics_match_hand_computed_values():
    m = impression_metrics([0, 1, 0, 1], [0.9, 0.8, 0.1, 0.3])  # ranks of clicks: 2 and 3
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert m["auc"] == pytest.approx(0.5)  # (pos, neg) pairs won: 0.8>0.1, 0.3>0.1 of four
    dcg = 1 / np.log2(3) + 1 / np.log2(4)
    assert m["ndcg@5"] == pytest.approx(dcg / (1 + 1 / np.log2(3)))
    perfect = impression_metrics([1, 0, 0], [3, 2, 1])
    assert perfect == {"auc": 1.0, "mrr": 1.0, "ndcg@5": 1.0, "ndcg@10": 1.0}
    agg = mind_metrics(["a", "a", "b", "b"], [1, 0, 0, 1], [1, 0, 1, 0])
    assert agg["auc"] == pytest.approx(0.5) and agg["impressions"] == 2


def test_mind_reader_names_file_and_line(tmp_path):
    folder = write_mind(tmp_path / "ok", users=5, items=12, impressions=6, seed=1)
    news, imps = read_mind(folder)
    assert len(news) == 12 and len(imps) == 6 and all(any(y for _, y in i.candidates) for i in imps)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "news.tsv").write_text((folder / "news.tsv").read_text())
    lines = (folder / "behaviors.tsv").read_text().splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\tN1-2"
    (bad / "behaviors.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"behaviors.tsv, line 3, field 'impressions'.*ITEMID-0"):
        read_mind(bad)
    lines[2] = "I3\tU1\ttime\tN999\tN1-1"
    (bad / "behaviors.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 3, field 'history': history item 'N999'"):
        read_mind(bad)
    (bad / "news.tsv").write_text("N1\tcat\n")
    with pytest.raises(DataError, match=r"news.tsv, line 1: expected at least 4"):
        read_mind(bad)


def test_blend_and_weights():
    model = np.array([0.9, 0.5, 0.1])
    pop = np.array([0.0, 10.0, 100.0])
    assert list(np.argsort(-blend(model, {"popularity": pop}, {"model": 1.0}))) == [0, 1, 2]
    mixed = blend(model, {"popularity": pop}, {"model": 1.0, "popularity": 2.0})
    assert mixed == pytest.approx([1.0, 0.5 + 0.2, 2.0])  # min-max scaled, then weighted
    assert parse_weights("model=1,popularity=0.3") == {"model": 1.0, "popularity": 0.3}
    with pytest.raises(ConfigError, match="name=number"):
        parse_weights("model")
    with pytest.raises(ConfigError, match="lacks"):
        blend(model, {}, {"recency": 1.0})


def write_mind_splits(tmp, impressions: tuple[int, int, int]):
    """Generated MIND train / dev / test folders under ``tmp`` (seeds 0, 1, 2)."""
    return [write_mind(tmp / name, impressions=n, seed=seed)
            for seed, (name, n) in enumerate(zip(("train", "dev", "test"), impressions))]


@pytest.fixture(scope="module")
def mind_run(tmp_path_factory, tiny_model_dir):
    from graftkit.train.trainer import train

    tmp = tmp_path_factory.mktemp("mind")
    train_dir, dev_dir, test_dir = write_mind_splits(tmp, (200, 40, 60))
    cfg = run_config(tmp, tiny_model_dir, train_dir, task={"type": "ranking", "max_history": 5},
                     data={"validation": str(dev_dir), "test": str(test_dir), "max_length": 64},
                     train={"epochs": 2, "learning_rate": 2e-3, "batch_size": 16})
    return train(cfg, log=lambda m: None), train_dir, test_dir


def test_ranking_run_reports_mind_metrics_and_beats_chance(mind_run):
    run, train_dir, test_dir = mind_run
    metrics = json.loads(run.metrics.read_text()) if hasattr(run, "metrics") else \
        json.loads((run.path / "metrics.json").read_text())
    ranking = metrics["test"]["ranking"]
    assert set(ranking) >= {"auc", "mrr", "ndcg@5", "ndcg@10", "impressions"} and ranking["impressions"] == 60
    table = compare(run.path, train_dir, test_dir)
    model = table["model (ranking)"]
    # the recommender scores like the evaluator: the same scores up to float rounding, which batches padded to other
    # lengths (and other thread counts) change in the last bits, enough to flip a near-tie of this tiny model
    assert model["auc"] == pytest.approx(ranking["auc"], abs=2e-3)
    assert model["auc"] > 0.52  # above chance: topic preference is learnable (tiny 2-layer model: ~0.57)
    assert score_popularity(test_dir, popularity_counts(train_dir))["auc"] > 0.5


def recommend_cli(tmp_path):
    """(a Typer app holding `graftkit recommend`, a three-item candidates CSV with popularity) for CLI tests."""
    import typer

    from graftkit.cli.apps import recommend_cmd

    items = tmp_path / "items.csv"
    items.write_text("id,text,popularity\n"
                     "a,Striker wins final and goal,1\nb,Shares plans profit and bank,500\n"
                     "c,Coach faces league and season,2\n")
    cli = typer.Typer()
    cli.command()(recommend_cmd)
    return cli, items


def test_recommend_cli_ranks_and_blends(mind_run, tmp_path):
    run, *_ = mind_run
    cli, items = recommend_cli(tmp_path)
    args = [str(run.path), "--candidates", str(items), "--history", "Goal reports match and coach",
            "--history", "Tennis wins final and season", "-k", "3"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    ranked = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["rank"] for r in ranked] == [1, 2, 3] and {r["id"] for r in ranked} == {"a", "b", "c"}
    res = CliRunner().invoke(cli, args + ["--weights", "model=0,popularity=1"])
    assert [json.loads(line)["id"] for line in res.stdout.splitlines()][0] == "b"  # popularity alone decides
