"""Shared helpers of the generation benchmarks: E2E NLG (cleaned) rows and the multi-reference test subset."""
from __future__ import annotations

import csv
from collections import OrderedDict
from pathlib import Path

import common

E2E = common.SHARED / "e2e_nlg_cleaned"


def e2e_rows(name: str) -> list[tuple[str, str]]:
    """(mr, ref) pairs of one E2E file, in file order."""
    with open(E2E / name, encoding="utf-8", newline="") as fh:
        return [(r["mr"], r["ref"]) for r in csv.DictReader(fh)]


def train_rows() -> list[tuple[str, str]]:
    return e2e_rows("devel-fixed.no-ol.csv")  # the cleaned train file is not available (SOURCE.txt)


def test_groups(n_mrs: int) -> OrderedDict[str, list[str]]:
    """The first ``n_mrs`` distinct test MRs with all of their references."""
    groups: OrderedDict[str, list[str]] = OrderedDict()
    for mr, ref in e2e_rows("test-fixed.csv"):
        if mr in groups or len(groups) < n_mrs:
            groups.setdefault(mr, []).append(ref)
    return groups


def write_pairs(path: Path, rows, header=("mr", "ref")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def e2e_tokenizer(out: Path, vocab_size: int = 4096) -> str:
    """A GPT-2-style byte-level BPE tokenizer trained on the E2E devel text (no GPT-2 files offline),
    saved with a random GPT-2 (``layers`` x ``width``) into ``out``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = [t for pair in train_rows() for t in pair]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    fast.save_pretrained(out)
    return str(out)


def random_gpt2(out: Path, layers: int = 6, width: int = 384, seed: int = 0) -> str:
    """A randomly initialised GPT-2 with the E2E tokenizer: the same starting weights for every arm."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(e2e_tokenizer(out))
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=width, n_layer=layers, n_head=max(1, width // 64),
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(out)
    return str(out)


def run_arms(script: str, arms, argv: list[str], out_name: str, args) -> dict:
    """Run each arm of ``script`` in its own process (``--arm NAME``, so neither arm inherits the other's
    threads, caches or allocator state), collect each one's ``RESULT {json}`` line, write bench/out/<out_name>."""
    import json
    import os
    import subprocess
    import sys

    results = {}
    for arm in arms:
        out = subprocess.run([sys.executable, script, "--arm", arm, *argv], capture_output=True, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False)  # a failure is reported below
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"{arm} failed:\n{out.stderr[-3000:]}")
        results[arm] = json.loads(line[7:])
    out_dir = Path(script).resolve().parent / "out"
    out_dir.mkdir(exist_ok=True)
    (out_dir / out_name).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return results
