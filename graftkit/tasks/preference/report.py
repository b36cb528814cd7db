"""What a preference run reports beside its generations: trl's implicit rewards on validation, the KL of the
trained model to the reference, and the starting model's generations, scored like the trained model's.

The KL is measured, not taken from trl (its DPO trainer logs none; its KTO trainer logs a batch estimate on
mismatched pairs): on every validation completion (chosen and rejected; KTO: the completion), teacher-forced after
its prompt, the exact KL(trained ‖ reference) of each next-token distribution over the vocabulary, summed over the
completion's tokens and averaged over completions. The starting model generates every validation and test input
before training with the run's decoding settings; the task's own report scores those generations, so the card
sets them beside the trained model's (graftkit/tasks/preference/card.py).
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch

from graftkit.data.dataset import Example, Splits
from graftkit.tasks.capabilities import Generates
from graftkit.tasks.common.generation.decoder import chat_completion_text, prompt_ids
from graftkit.tasks.common.generation.rows import CHAT
from graftkit.tasks.predictions import GeneratedText

#: what trl logs of the preference (evaluated on validation after training)
PREFERENCE_METRICS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "kl", "loss")
#: validation inputs whose generations before and after training the card shows
SAMPLES = 5


def generate(task, model, tokenizer, inputs: list[Any], generation_config) -> list[str]:
    """``model``'s generation for each input with the run's decoding settings."""
    gen = task.capability(Generates, "train")
    return gen.generate(model, tokenizer, inputs, generation_config, task.task_cfg.eval_batch_size)


def start_generations(task, model, tokenizer, splits: Splits, generation_config) -> dict[str, list[str]]:
    """The starting model's generation of every validation and test input, by split (call before training)."""
    return {name: generate(task, model, tokenizer, [task.input_of(e) for e in examples], generation_config)
            for name, examples in (("validation", splits.validation), ("test", splits.test)) if examples}


def generation_metrics(task, examples: list[Example], texts: list[str]) -> dict[str, float]:
    """The task's report of generations ``texts`` of ``examples`` (the metrics the run's results table holds)."""
    report = task.report(examples, [GeneratedText(t) for t in texts], None, plots=False)
    return {k: v for k, v in report.items() if isinstance(v, float)}


def samples(task, model, tokenizer, examples: list[Example], before: list[str], generation_config) -> list[dict]:
    """The first ``SAMPLES`` distinct prompts of ``examples`` with their reference (the chosen or desirable
    completion), the starting model's generation (``before``: one per example) and ``model``'s."""
    first: dict[str, int] = {}
    for i, e in enumerate(examples):
        first.setdefault(e.text, i)
    shown = list(first.values())[:SAMPLES]
    after = generate(task, model, tokenizer, [task.input_of(examples[i]) for i in shown], generation_config)
    return [{"prompt": examples[i].text, "reference": examples[i].label, "before": before[i], "after": a}
            for i, a in zip(shown, after)]


def preference_report(task, trainer, reference, tokenizer, splits: Splits, before: dict[str, list[str]],
                      max_length: int, generation_config) -> dict:
    """What training adds to ``train`` in metrics.json: the starting model's generation metrics per split and, with
    a validation split, trl's implicit rewards with the measured KL (``preference_validation``) and samples."""
    out: dict = {"generation_before": {name: generation_metrics(task, getattr(splits, name), texts)
                                       for name, texts in before.items()}}
    if not splits.validation:
        return out
    scores = final_evaluation(trainer)  # trl's own reward margins and accuracies of the final policy
    pref = {k: scores[f"eval_{k}"] for k in PREFERENCE_METRICS if f"eval_{k}" in scores}
    pairs = completion_pairs(splits.validation, tokenizer, max_length)
    pref["kl_to_reference"] = kl_to_reference(trainer.model, reference, pairs, tokenizer.pad_token_id,
                                              task.task_cfg.eval_batch_size)
    out["preference_validation"] = pref
    out["generation_samples"] = samples(task, trainer.model, tokenizer, splits.validation, before["validation"],
                                        generation_config)
    return out


def final_evaluation(trainer) -> dict:
    """trl's validation metrics of the final weights: the Trainer's own evaluation at the last step when it ran
    one (transformers evaluates at the end of training under every eval_strategy) and kept the last weights, else
    a new one (early stopping keeps the best checkpoint's)."""
    last = next((e for e in reversed(trainer.state.log_history) if "eval_loss" in e), None)
    at_end = last is not None and last.get("step") == trainer.state.global_step
    if at_end and not trainer.args.load_best_model_at_end:
        return last
    return trainer.evaluate()


def completion_pairs(examples: list[Example], tokenizer, max_length: int) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, completion ids) of every completion of ``examples``, cut to ``max_length`` tokens as trl cuts
    them (the prompt is whole: graftkit refused longer ones)."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    out = []
    for e in examples:
        completions = [c for c in (e.label, e.extra.get("rejected"), e.extra.get("completion")) if c is not None]
        for c in dict.fromkeys(completions):  # a desirable KTO completion is both label and completion
            if e.extra.get("format") == CHAT:
                p = prompt_ids(tokenizer, e.extra["messages"])
                ids = tokenizer(chat_completion_text(tokenizer, e.extra["messages"], c), add_special_tokens=False)
            else:
                p, ids = prompt_ids(tokenizer, e.text), tokenizer(c, add_special_tokens=False)
            out.append((p, (ids["input_ids"] + eos)[:max(max_length - len(p), 0)]))
    return [(p, c) for p, c in out if c]


def _log_probs(model, ids: torch.Tensor, mask: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """Next-token log-probabilities at the ``scored`` positions only (completion tokens, not the whole vocabulary
    at every position of the batch)."""
    device = next(model.parameters()).device
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    return torch.log_softmax(logits[scored.to(device)].float(), -1)


@torch.no_grad()
def kl_to_reference(policy, reference, pairs: list[tuple[list[int], list[int]]], pad_id: int,
                    batch_size: int) -> float:
    """Mean over completions of Σ_tokens KL(policy ‖ reference) of the next-token distributions, teacher-forced;
    ``reference`` None: the policy with its adapter disabled (peft's reference, as in trl)."""
    total, was_training = 0.0, policy.training
    policy.eval()
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        ids = torch.full((len(chunk), max(len(p) + len(c) for p, c in chunk)), pad_id)
        mask, scored = torch.zeros_like(ids), torch.zeros_like(ids, dtype=torch.bool)
        for row, (p, c) in enumerate(chunk):
            ids[row, :len(p) + len(c)] = torch.tensor(p + c)
            mask[row, :len(p) + len(c)] = 1
            scored[row, len(p) - 1:len(p) + len(c) - 1] = True  # the positions that predict a completion token
        lp = _log_probs(policy, ids, mask, scored)
        with policy.disable_adapter() if reference is None else nullcontext():
            lq = _log_probs(policy if reference is None else reference, ids, mask, scored).to(lp.device)
        total += float((lp.exp() * (lp - lq)).sum())
    policy.train(was_training)
    return total / max(len(pairs), 1)
