"""task.type preference: DPO and KTO with trl's trainers on a tiny random decoder, in graftkit's run folder.

DPO must raise the chosen-over-rejected log-probability margin on its training pairs while the reference model
(the starting checkpoint) stays as it was, and its card report the KL to the reference, the generation metrics
before and after and sample generations of both; LoRA DPO saves an adapter alone that reloads to the same model;
bad rows are refused by file, line and field; loss types are the installed trl's."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from conftest import run_config
from generation_helpers import PAIRS, tiny_decoder, write_jsonl
from graftkit.errors import ConfigError, DataError
from graftkit.inference.runs import open_run
from graftkit.tasks.capabilities import Generates
from graftkit.tasks.preference.card import PreferenceCard
from graftkit.tasks.preference import train as preference_train
from graftkit.tasks.preference.config import PreferenceConfig, trl_loss_types
from graftkit.tasks.predictions import GeneratedText
from graftkit.train.trainer import train

#: chosen: the pair's own completion; rejected: another pair's (a wrong colour)
DPO_ROWS = [{"prompt": p, "chosen": c, "rejected": PAIRS[(i + 1) % len(PAIRS)][1]} for i, (p, c) in enumerate(PAIRS)]


class Spy:
    """Records the trl trainer a run builds, so a test can look at its policy and reference models."""

    def __init__(self, monkeypatch, method: str):
        config_cls, trainer_cls = preference_train.TRAINERS[method]
        spy = self

        class Recorded(trainer_cls):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                spy.trainer = self

        monkeypatch.setitem(preference_train.TRAINERS, method, (config_cls, Recorded))


def _cfg(tmp_path, base, rows=DPO_ROWS, task=None, train=None, **sections):
    path = write_jsonl(tmp_path / "prefs.jsonl", rows * 2)
    data = {"train": str(path), "validation": str(path), "test": str(path), "max_length": 32}
    return run_config(tmp_path, base, path, data=data, task={"type": "preference", "eval_samples": 0,
                                                             "generation": {"max_new_tokens": 6}, **(task or {})},
                      train={"max_steps": 12, "batch_size": 4, "learning_rate": 5e-3, "warmup": 0,
                             "logging_steps": 4, "eval_strategy": "steps", "eval_steps": 100, **(train or {})},
                      **sections)


def _margins(model, tok, rows) -> np.ndarray:
    """log p(chosen | prompt) − log p(rejected | prompt) per row (prompt + completion ids, as trl builds them)."""
    out = []
    for r in rows:
        scores = []
        for completion in (r["chosen"], r["rejected"]):
            prompt = tok(r["prompt"])["input_ids"]
            ids = tok(r["prompt"] + completion)["input_ids"] + [tok.eos_token_id]
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].float(), -1)
            target = torch.tensor(ids[1:])
            scores.append(float(logp[torch.arange(len(target)), target][len(prompt) - 1:].sum()))
        out.append(scores[0] - scores[1])
    return np.array(out)


def _kl(policy, reference, tok, rows) -> float:
    """Mean over the rows' completions of Σ_tokens KL(policy ‖ reference), one sequence at a time (no padding)."""
    total, n = 0.0, 0
    for r in rows:
        for completion in (r["chosen"], r["rejected"]):
            prompt = tok(r["prompt"])["input_ids"]
            ids = torch.tensor([prompt + tok(completion, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]])
            with torch.no_grad():
                lp, lq = (torch.log_softmax(m(ids).logits[0, len(prompt) - 1:-1].float(), -1)
                          for m in (policy, reference))
            total, n = total + float((lp.exp() * (lp - lq)).sum()), n + 1
    return total / n


def test_dpo_raises_the_chosen_margin_and_leaves_the_reference_unchanged(tmp_path, monkeypatch):
    base = tiny_decoder(tmp_path / "base")
    spy = Spy(monkeypatch, "dpo")
    run = train(_cfg(tmp_path, base), log=lambda m: None).path
    start = AutoModelForCausalLM.from_pretrained(base).eval()
    tok = AutoTokenizer.from_pretrained(base)
    reference = spy.trainer.ref_model
    for name, value in start.state_dict().items():  # the reference is the start, never trained
        torch.testing.assert_close(reference.state_dict()[name], value, rtol=0, atol=0)
    trained = AutoModelForCausalLM.from_pretrained(str(run)).eval()
    before, after = _margins(start, tok, DPO_ROWS), _margins(trained, tok, DPO_ROWS)
    assert (after > before).all() and after.mean() > before.mean() + 1.0
    metrics = json.loads((run / "metrics.json").read_text())
    pref = metrics["train"]["preference_validation"]
    assert pref["rewards/accuracies"] == 1.0 and pref["rewards/margins"] > 0
    assert {"bleu", "rougeL"} <= set(metrics["test"])  # generations scored against the chosen completions
    card = (run / "README.md").read_text()
    assert (run / "COMPLETE").is_file() and "graftkit generate" in card
    _check_card(run, metrics, card, start, trained, tok)


def _check_card(run, metrics: dict, card: str, start, trained, tok) -> None:
    """The card's KL, generation metrics before and after, and samples are what the two models give."""
    pref = metrics["train"]["preference_validation"]
    assert pref["kl_to_reference"] == pytest.approx(_kl(trained, start, tok, DPO_ROWS), rel=1e-3)
    assert pref["kl_to_reference"] > 0
    assert f"| KL to the reference (per completion) | {pref['kl_to_reference']:.4f} |" in card
    runner = open_run(run)
    prompts = [p for p, _ in PAIRS]
    gc = GenerationConfig.from_pretrained(str(run))  # the run's decoding settings, also the start's before training
    before = runner.task.capability(Generates, "generate").generate(start, tok, prompts, gc)
    after = [p.generated for p in runner.predict(prompts)]
    samples = metrics["train"]["generation_samples"]
    assert [(s["prompt"], s["reference"]) for s in samples] == [(p, c) for p, c in PAIRS]
    assert [s["before"] for s in samples] == before and [s["after"] for s in samples] == after
    examples, _ = runner.task.read(runner.cfg.data.test, runner.cfg.data)
    scored = runner.task.report(examples, [GeneratedText(dict(zip(prompts, before))[e.text]) for e in examples], None)
    was = metrics["train"]["generation_before"]["test"]
    assert was["rougeL"] == pytest.approx(scored["rougeL"]) and was["bleu"] == pytest.approx(scored["bleu"])
    for split in ("validation", "test"):
        for k in ("bleu", "rougeL"):
            now = metrics[split][k]
            assert f"| {split} | {k} | {metrics['train']['generation_before'][split][k]:.4f} | {now:.4f} |" in card
    assert "| prompt | chosen | before | after |" in card
    cell = [" ".join(t.split()).replace("|", "\\|") or "(empty)" for t in (before[0], after[0])]
    assert f"| {PAIRS[0][0]} | {PAIRS[0][1]} | {cell[0]} | {cell[1]} |" in card


def test_lora_dpo_saves_an_adapter_alone_that_reloads_to_the_same_model(tmp_path, monkeypatch):
    base = tiny_decoder(tmp_path / "base")
    spy = Spy(monkeypatch, "dpo")
    run = train(_cfg(tmp_path, base, peft={"method": "lora", "r": 4, "alpha": 8}), log=lambda m: None).path
    assert spy.trainer.ref_model is None  # trl's reference: the same model with its adapter disabled
    pref = json.loads((run / "metrics.json").read_text())["train"]["preference_validation"]
    assert pref["kl_to_reference"] > 0  # measured against the adapter-disabled model
    assert (run / "adapter_model.safetensors").is_file() and not (run / "model.safetensors").exists()
    prompts = [p for p, _ in PAIRS]
    runner = open_run(run)
    tok = AutoTokenizer.from_pretrained(str(run))
    ids = tok(prompts[0], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        live = spy.trainer.model.eval()(ids).logits
        reloaded = runner.model(ids).logits
    torch.testing.assert_close(reloaded, live, atol=1e-4, rtol=1e-4)
    first = [p.generated for p in runner.predict(prompts)]
    assert first == [p.generated for p in open_run(run).predict(prompts)]


def test_kto_trains_on_labelled_completions(tmp_path):
    rows = [{"prompt": r["prompt"], "completion": r["chosen"], "label": True} for r in DPO_ROWS] + \
           [{"prompt": r["prompt"], "completion": r["rejected"], "label": "false"} for r in DPO_ROWS]
    run = train(_cfg(tmp_path, tiny_decoder(tmp_path / "base"), rows, task={"method": "kto"},
                     train={"max_steps": 4, "batch_size": 8}), log=lambda m: None).path
    pref = json.loads((run / "metrics.json").read_text())["train"]["preference_validation"]
    assert {"rewards/chosen", "rewards/rejected", "kl", "kl_to_reference"} <= set(pref)
    card = (run / "README.md").read_text()
    assert f"| trl's KL estimate (KTO, mismatched pairs) | {pref['kl']:.4f} |" in card
    assert f"| KL to the reference (per completion) | {pref['kl_to_reference']:.4f} |" in card
    assert "| prompt | chosen | before | after |" in card and "| test | rougeL |" in card


def test_bad_rows_are_refused_by_file_line_and_field(tmp_path):
    base = tiny_decoder(tmp_path / "base")
    same = DPO_ROWS[:2] + [{"prompt": "x", "chosen": "the same", "rejected": "the same"}]
    with pytest.raises(DataError, match=r"prefs\.jsonl, line 3, field 'rejected'.*identical"):
        train(_cfg(tmp_path, base, same), log=lambda m: None)
    empty = DPO_ROWS[:1] + [{"prompt": "  ", "chosen": "a", "rejected": "b"}]
    with pytest.raises(DataError, match=r"prefs\.jsonl, line 2, field 'prompt'.*empty"):
        train(_cfg(tmp_path, base, empty), log=lambda m: None)
    kto = [{"prompt": "x", "completion": "y", "label": "maybe"}]
    with pytest.raises(DataError, match=r"prefs\.jsonl, line 1, field 'label'.*not true or false"):
        train(_cfg(tmp_path, base, kto, task={"method": "kto"}), log=lambda m: None)


def test_loss_types_are_the_installed_trls():
    assert {"sigmoid", "ipo", "hinge"} <= set(trl_loss_types("dpo")) and "kto" in trl_loss_types("kto")
    assert PreferenceConfig(loss_type="ipo").loss_type == "ipo"
    with pytest.raises(ValueError, match="sigmoid"):
        PreferenceConfig(loss_type="nope")
    with pytest.raises(ValueError, match="apo_zero_unpaired"):
        PreferenceConfig(method="kto", loss_type="ipo")
    assert PreferenceConfig(loss_type=["sigmoid", "sft"], loss_weights=[1.0, 0.5]).loss_weights == [1.0, 0.5]
    with pytest.raises(ValueError, match="2 loss types"):
        PreferenceConfig(loss_type=["sigmoid", "sft"], loss_weights=[1.0])


def test_a_lora_run_to_start_from_with_peft_is_refused(tmp_path):
    start = tmp_path / "lora-run"
    start.mkdir()
    (start / "adapter_config.json").write_text("{}")
    with pytest.raises(ConfigError, match="graftkit merge"):
        train(_cfg(tmp_path, str(start), peft={"method": "lora"}), log=lambda m: None)


def test_dpo_from_a_lora_causal_lm_run_starts_from_and_refers_to_the_merged_model(tmp_path, monkeypatch):
    from graftkit.modeling.peft import load_adapter_model

    rows = [{"prompt": p, "completion": c} for p, c in PAIRS]
    path = write_jsonl(tmp_path / "sft.jsonl", rows * 2)
    sft = train(run_config(tmp_path / "sft", tiny_decoder(tmp_path / "base"), path,
                           data={"split": {"validation": 0.0, "test": 0.0}},
                           task={"type": "causal_lm", "eval_samples": 0}, peft={"method": "lora", "r": 4, "alpha": 8},
                           train={"max_steps": 4, "batch_size": 4, "learning_rate": 1e-2, "warmup": 0}),
                log=lambda m: None).path
    spy = Spy(monkeypatch, "dpo")
    run = train(_cfg(tmp_path, str(sft), train={"max_steps": 2}), log=lambda m: None).path
    merged = load_adapter_model(sft, AutoModelForCausalLM, merge=True).state_dict()
    for name, value in spy.trainer.ref_model.state_dict().items():
        torch.testing.assert_close(value, merged[name], rtol=0, atol=0)
    assert (run / "model.safetensors").is_file() and not (run / "adapter_config.json").exists()


def test_the_card_tables_keep_one_line_per_row_and_leave_out_what_was_not_measured():
    results = {"test": {"bleu": 2.0, "rougeL": 30.0, "n": 4},
               "train": {"generation_before": {"test": {"bleu": 1.0, "rougeL": 10.0, "chrf": 5.0}},
                         "generation_samples": [{"prompt": "a | b", "reference": None, "before": "x\ny",
                                                 "after": "z" * 200}]}}
    notes = PreferenceCard(None).notes(results)  # no validation split: no preference table
    assert len(notes) == 2 and "| test | bleu | 1.0000 | 2.0000 |" in notes[0] and "chrf" not in notes[0]
    assert notes[1].splitlines()[-1] == f"| a \\| b | — | x y | {'z' * 159}… |"
    assert PreferenceCard(None).notes({"train": {}}) == []


def test_the_final_evaluation_is_reused_not_run_twice():
    from types import SimpleNamespace

    from graftkit.tasks.preference.report import final_evaluation

    calls = []
    trainer = SimpleNamespace(args=SimpleNamespace(load_best_model_at_end=False),
                              state=SimpleNamespace(global_step=40, log_history=[
        {"loss": 0.5, "step": 40}, {"eval_loss": 0.3, "eval_rewards/accuracies": 0.9, "step": 40}]),
                              evaluate=lambda: calls.append(1) or {"eval_loss": 0.0})
    assert final_evaluation(trainer)["eval_rewards/accuracies"] == 0.9 and calls == []
    trainer.state.global_step = 50  # the last evaluation is of older weights: evaluate the final ones
    assert final_evaluation(trainer) == {"eval_loss": 0.0} and calls == [1]


def test_early_stopping_stops_on_the_validation_loss_and_keeps_the_best_weights(tmp_path):
    # a threshold no evaluation can clear: the first evaluation is the best, the second ends training (patience 1)
    cfg = _cfg(tmp_path, tiny_decoder(tmp_path / "base"),
               train={"max_steps": 40, "eval_steps": 4, "early_stopping": {"patience": 1, "threshold": 100.0}})
    run = train(cfg, log=lambda m: None).path
    history = json.loads((run / "history.json").read_text())
    evals = [e for e in history if "eval_loss" in e]
    # evaluated at 4 and 8, stopped there (not at 40); then once more, the report's, of the weights kept
    assert [e["step"] for e in evals][:2] == [4, 8] and max(e["step"] for e in history) == 8
    setup = json.loads((run / "training_setup.json").read_text())
    assert "early_stopping" in json.dumps(setup)
    pref = json.loads((run / "metrics.json").read_text())["train"]["preference_validation"]
    best = min(e["eval_loss"] for e in evals[:2])  # the best weights by validation loss are the run's
    assert pref["loss"] == pytest.approx(best, rel=1e-4)
