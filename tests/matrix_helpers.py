"""Tiny runs of every registered task type for the task × command matrix (tests/test_matrix.py).

Each ``Kind`` knows how to write its data and config, what a user passes to ``predict`` and which
labelled file the evaluation commands read. Runs are trained once per session through the CLI, overfit
on a handful of rows so that their outputs are meaningful (the training labels come back).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml
from typer.testing import CliRunner

from conftest import write_csv
from generation_helpers import PAIRS, bpe_tokenizer, corpus, tiny_decoder, write_jsonl
from graftkit.cli import app

CLASSES = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
           ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"],
           ["i loved every minute", "pos"], ["i hated every minute", "neg"]]
VALUES = [["one good thing", "1.0"], ["good good day", "2.0"], ["a plain day", "0.0"],
          ["good good good", "3.0"], ["nothing at all", "0.0"], ["good news", "1.0"]]
CONLL = """Angela B-PER
Merkel I-PER
visited O
Munich B-LOC

Peter B-PER
flew O
to O
Berlin B-LOC

Merkel B-PER
left O
Berlin B-LOC
"""
CLICKS = [["sports news ; football scores", "the league final tonight", "1", "a"],
          ["sports news ; football scores", "a new pasta recipe", "0", "a"],
          ["cooking ; baking bread", "a new pasta recipe", "1", "b"],
          ["cooking ; baking bread", "the league final tonight", "0", "b"]]
DOCS = ["the bank raised its rates today", "shares fell after the report", "the central bank cut rates",
        "profits rose in the third quarter", "the market closed higher"]


@dataclass
class Kind:
    """One column of the matrix: how to make its run and what it takes as input."""

    label: str
    task: dict
    write_data: Callable[[Path], dict]  # folder -> the `data:` section (and writes its files)
    inputs: list  # what `graftkit predict` gets
    train: dict = field(default_factory=dict)
    base: str = "tiny"  # tiny: the tiny BERT; decoder: a tiny GPT-2; bart: a tiny BART
    #: the base of the LoRA twin, when it differs (a warm-started BERT2BERT trains its new cross-attention in
    #: full, so peft refuses it; a native encoder-decoder takes adapters)
    lora_base: str = ""

    @property
    def slug(self) -> str:
        return self.label.replace(" ", "-").replace("(", "").replace(")", "")


def _csv(rows, header):
    return lambda d: {"train": str(write_csv(d / "train.csv", rows * 3, header=header)),
                      "test": str(write_csv(d / "test.csv", rows, header=header))}


def _conll(d: Path) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    (d / "train.conll").write_text((CONLL + "\n") * 4, encoding="utf-8")
    (d / "test.conll").write_text(CONLL, encoding="utf-8")
    return {"train": str(d / "train.conll"), "test": str(d / "test.conll")}


def _text(d: Path) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    (d / "train.txt").write_text("\n".join(DOCS * 3) + "\n", encoding="utf-8")
    (d / "test.txt").write_text("\n".join(DOCS) + "\n", encoding="utf-8")
    return {"train": str(d / "train.txt"), "test": str(d / "test.txt")}


def _pairs(d: Path) -> dict:
    rows = [{"prompt": p, "completion": c} for p, c in PAIRS]
    return {"train": str(write_jsonl(d / "train.jsonl", rows * 3)), "test": str(write_jsonl(d / "test.jsonl", rows))}


def _dpo(d: Path) -> dict:
    rows = [{"prompt": p, "chosen": c, "rejected": f"{p} {p}"} for p, c in PAIRS]
    return {"train": str(write_jsonl(d / "train.jsonl", rows * 3)), "test": str(write_jsonl(d / "test.jsonl", rows))}


def _preferences(d: Path) -> dict:
    return {**_dpo(d), "text_column": "prompt", "text_pair_column": "response"}


def _clicks(d: Path) -> dict:
    files = _csv(CLICKS, ("history", "candidate", "label", "impression"))(d)
    return {**files, "text_column": "history", "text_pair_column": "candidate"}


KINDS = [
    Kind("classification", {"type": "classification"}, _csv(CLASSES, ("text", "label")), [r[0] for r in CLASSES]),
    Kind("ner", {"type": "ner"}, _conll, ["Angela Merkel visited Munich", "Peter flew to Berlin"],
         train={"learning_rate": 5e-3}),
    Kind("regression", {"type": "regression"}, _csv(VALUES, ("text", "label")), [r[0] for r in VALUES]),
    Kind("embedding", {"type": "embedding"}, _csv(CLASSES, ("text", "label")), [r[0] for r in CLASSES[:2]],
         train={"early_stopping": {}}),
    Kind("mlm", {"type": "mlm"}, _text, ["the bank raised its [MASK] today", DOCS[1]]),
    Kind("causal_lm", {"type": "causal_lm", "eval_samples": 2}, _pairs, [p for p, _ in PAIRS[:2]],
         base="decoder"),
    Kind("seq2seq", {"type": "seq2seq", "eval_samples": 2}, _pairs, [p for p, _ in PAIRS[:2]], lora_base="bart"),
    Kind("preference", {"type": "preference", "eval_samples": 2}, _dpo, [p for p, _ in PAIRS[:2]], base="decoder"),
    Kind("reward", {"type": "reward"}, _preferences, [(p, c) for p, c in PAIRS[:2]], base="decoder"),
    Kind("ranking", {"type": "ranking"}, _clicks, [(r[0], r[1]) for r in CLICKS]),
    Kind("ranking (two_tower)", {"type": "ranking", "architecture": "two_tower", "negatives_per_positive": 1},
         _clicks, [(r[0], r[1]) for r in CLICKS], train={"early_stopping": {}}),
]


class MatrixRuns:
    """Trains each kind's run (and its LoRA twin) once, on first use, through `graftkit train`."""

    def __init__(self, root: Path, tiny_model_dir: str):
        self.root, self.tiny = root, tiny_model_dir
        self.cli = CliRunner()
        self._runs: dict[tuple[str, str], Path] = {}
        self.data: dict[str, dict] = {}

    def base_model(self, base: str) -> str:
        if base == "tiny":
            return self.tiny
        target = self.root / f"tiny-{base}"
        if not (target / "config.json").is_file():
            tiny_decoder(target) if base == "decoder" else tiny_bart(target)
        return str(target)

    def config(self, kind: Kind, name: str, **sections: Any) -> Path:
        """A config file for ``kind`` (``sections`` update its parts); returns its path."""
        folder = self.root / kind.slug
        if kind.label not in self.data:
            self.data[kind.label] = kind.write_data(folder / "data")
        tree = {"name": name, "output_dir": str(folder / "runs"),
                "data": {**self.data[kind.label], "max_length": 32, "split": {"validation": 0.25, "test": 0.0}},
                "model": {"name_or_path": self.base_model(kind.base)}, "task": dict(kind.task),
                "train": {"epochs": 12, "batch_size": 8, "learning_rate": 3e-3, "report_to": [], "logging_steps": 50,
                          "early_stopping": None, **kind.train},
                "eval": {"plots": False, "robustness_rows": 0}}
        for key, value in sections.items():
            tree[key] = {**tree.get(key, {}), **value} if isinstance(value, dict) else value
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(tree), encoding="utf-8")
        return path

    def train(self, kind: Kind, name: str = "run", **sections: Any) -> Path:
        """The run folder of ``kind`` trained with ``sections`` (once per name)."""
        if (kind.label, name) not in self._runs:
            cfg = self.config(kind, name, **sections)
            res = self.cli.invoke(app, ["train", str(cfg)])
            assert res.exit_code == 0, f"{kind.label} {name}: {res.output}"
            self._runs[(kind.label, name)] = self.root / kind.slug / "runs" / name
        return self._runs[(kind.label, name)]

    def run(self, kind: Kind) -> Path:
        return self.train(kind)

    def lora(self, kind: Kind) -> Path:
        model = {"model": {"name_or_path": self.base_model(kind.lora_base)}} if kind.lora_base else {}
        return self.train(kind, "lora", peft={"method": "lora", "r": 4, "alpha": 8}, **model)

    def labelled(self, kind: Kind) -> Path:
        """The kind's labelled test file."""
        self.config(kind, "run")
        return Path(self.data[kind.label]["test"])


def tiny_bart(out: Path) -> str:
    """A random 1+1-layer BART with a byte-level BPE tokenizer: a native encoder-decoder (takes LoRA)."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(0)
    tok = bpe_tokenizer(corpus(), "<s>", "</s>")
    tok.add_special_tokens({"pad_token": "<pad>"})
    cfg = BartConfig(vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
                     pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                     decoder_start_token_id=tok.eos_token_id, forced_eos_token_id=tok.eos_token_id)
    out.mkdir(parents=True, exist_ok=True)
    BartForConditionalGeneration(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def predictions_of(run: Path, inputs: list) -> list[dict]:
    """What the library predicts for ``inputs`` (the CLI and the service must say the same)."""
    from graftkit.inference.runs import open_run

    return [p.to_dict() for p in open_run(run).predict(inputs)]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.strip().splitlines() if line.strip().startswith("{")]


def forward_logits(run: Path, prompts: list[str]):
    """The run model's logits for each prompt followed by the same few target tokens (teacher forcing)."""
    import torch
    from transformers import AutoTokenizer

    from graftkit.inference.base import load_task
    from graftkit.inference.run_model import load_run_model
    from graftkit.modeling.run_folder import RunFolder

    model = load_run_model(run, load_task(RunFolder(run))).eval()
    enc = AutoTokenizer.from_pretrained(str(run))(prompts, return_tensors="pt", padding=True)
    extra = {}
    if model.config.is_encoder_decoder:
        start = model.config.decoder_start_token_id
        extra["decoder_input_ids"] = torch.tensor([[start, 3, 4, 5]] * len(prompts))
    with torch.no_grad():
        return model(**enc, **extra).logits.numpy()
