"""Write ``tests/assets/run_v1/``: a tiny classification run folder in run-folder format 1, the format of
every folder written before run folders carried ``format_version``.

The committed folder was written by commit cb1625988f83b2683378ec2b408a4679c90a576f ("review: drop the
unused sqlite_url"), the last commit before format versions, from a snapshot of that commit::

    git archive cb16259 | tar -x -C /tmp/gk-v1
    cd /tmp/gk-v1 && PYTHONPATH=. python /path/to/tests/assets/make_run_v1.py /path/to/tests/assets/run_v1

It trains a 1-layer, 16-wide BERT with a 50-token WordPiece vocabulary on a few sentiment lines, keeps
only the files a loader reads (no checkpoints, logs, plots or predictions) and stores the predictions
the run made then in ``expected_predictions.json``. ``tests/test_run_format.py`` loads the folder with
today's code and checks it predicts exactly that.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizer

WORDS = ["the", "a", "movie", "film", "food", "service", "was", "is", "very", "not", "it", "this", "and", "i",
         "good", "great", "fine", "happy", "love", "nice", "best", "fun",
         "bad", "awful", "poor", "sad", "hate", "worst", "dull", "boring",
         "really", "so", "quite", "plot", "actor", "meal", "staff", "place", ",", ".", "!",
         "##s", "##ly", "##ed", "##ing"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
POSITIVE = ["good", "great", "fine", "happy", "love", "nice", "best", "fun"]
NEGATIVE = ["bad", "awful", "poor", "sad", "hate", "worst", "dull", "boring"]
SUBJECTS = ["the movie", "the film", "the food", "the service", "this place", "the staff"]
#: the inputs whose predictions are stored (some unseen combinations, one with an unknown word)
INPUTS = ["the movie was very good .", "the food was awful !", "this place is not fun", "i love the staff",
          "the plot was dull and boring", "quite nice , really", "the actor is the worst", "zebra movie"]


def write_rows(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)


def sentences(words: list[str], label: str) -> list[tuple[str, str]]:
    return [(f"{s} was {'very ' if i % 2 else ''}{w}", label) for i, w in enumerate(words) for s in SUBJECTS[i % 3::3]]


def make_base_model(folder: Path) -> None:
    folder.mkdir()
    BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)}, do_lower_case=True).save_pretrained(str(folder))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)
    BertModel(cfg).save_pretrained(str(folder))


def main(out: Path) -> None:
    from graftkit.inference.predictor import Predictor
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    assert len(VOCAB) == 50
    work = Path(tempfile.mkdtemp(prefix="run-v1-"))
    os.chdir(work)  # relative paths, so the stored config.yaml names no temporary folder
    make_base_model(Path("tiny-bert"))
    rows = sentences(POSITIVE, "pos") + sentences(NEGATIVE, "neg")
    write_rows(Path("train.csv"), rows)
    write_rows(Path("test.csv"), rows[::4])
    cfg = config_from_dict({
        "name": "v1-classification", "output_dir": "runs",
        "data": {"train": "train.csv", "validation": "test.csv", "test": "test.csv", "max_length": 16},
        "model": {"name_or_path": "tiny-bert"},
        "train": {"epochs": 8, "batch_size": 8, "learning_rate": 1e-2, "report_to": [], "logging_steps": 1,
                  "early_stopping": None, "seed": 0},
        "eval": {"plots": False, "robustness_rows": 0},
    })
    run = train(cfg, log=lambda m: None)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(run.path, out, ignore=shutil.ignore_patterns("checkpoints", "logs", "plots", "predictions",
                                                                 "history.json"))
    preds = Predictor(out).predict(INPUTS)
    expected = [{"input": text, **p.to_dict()} for text, p in zip(INPUTS, preds)]
    (out / "expected_predictions.json").write_text(json.dumps(expected, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(work)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
