"""The preference run's part of its model card: the implicit rewards and the KL to the reference on validation,
the generation metrics of the starting model beside the trained one's, and sample generations of both
(what graftkit/tasks/preference/report.py measured)."""
from __future__ import annotations

from graftkit.tasks.common.generation.capabilities import GenerativeCard

#: the validation measures the card shows, in order, by the name the card gives them
CARD_METRICS = (("reward accuracy", "rewards/accuracies"), ("reward margin", "rewards/margins"),
                ("reward of the chosen", "rewards/chosen"), ("reward of the rejected", "rewards/rejected"),
                ("KL to the reference (per completion)", "kl_to_reference"),
                ("trl's KL estimate (KTO, mismatched pairs)", "kl"), ("loss", "loss"))
#: characters of a sample's text the card shows
CELL = 160


def preference_table(pref: dict | None) -> str | None:
    if not pref:
        return None
    lines = ["Preference on validation: trl's implicit rewards (beta · log-ratio of the trained model to the "
             "reference) of the final model; accuracy is the share of pairs whose chosen completion gets the higher "
             "reward, margin the mean reward of the chosen minus the rejected. The KL to the reference is measured "
             "on every validation completion after its prompt: the exact KL(trained ‖ reference) of each next-token "
             "distribution, summed over the completion and averaged over completions.", "",
             "| metric | value |", "| --- | --- |"]
    return "\n".join(lines + [f"| {name} | {pref[key]:.4f} |" for name, key in CARD_METRICS if key in pref])


def generation_table(before: dict | None, results: dict) -> str | None:
    """Each split's generation metrics of the starting model (before) and of this run (after)."""
    rows = [f"| {split} | {k} | {v:.4f} | {results[split][k]:.4f} |" for split, metrics in (before or {}).items()
            for k, v in metrics.items() if isinstance((results.get(split) or {}).get(k), float)]
    if not rows:
        return None
    lines = ["Generation before and after: the starting checkpoint's generations (before) and this run's (after) "
             "of the same prompts, with the same decoding settings, scored against the chosen (or desirable) "
             "completions.", "", "| split | metric | before | after |", "| --- | --- | --- | --- |"]
    return "\n".join(lines + rows)


def samples_table(samples: list[dict] | None) -> str | None:
    if not samples:
        return None
    lines = ["Sample generations on validation, before and after training:", "",
             "| prompt | chosen | before | after |", "| --- | --- | --- | --- |"]
    return "\n".join(lines + ["| " + " | ".join(_cell(s[k]) for k in ("prompt", "reference", "before", "after"))
                              + " |" for s in samples])


def _cell(text: str | None) -> str:
    """``text`` as one Markdown table cell: one line, pipes escaped, cut to ``CELL`` characters."""
    if text is None:
        return "—"
    flat = " ".join(str(text).split())
    flat = flat if len(flat) <= CELL else flat[:CELL - 1] + "…"
    return flat.replace("|", "\\|") or "(empty)"


class PreferenceCard(GenerativeCard):
    """The card adds the preference on validation, generation before and after, and sample generations."""

    def notes(self, results: dict) -> list[str]:
        train = results.get("train") or {}
        parts = (preference_table(train.get("preference_validation")),
                 generation_table(train.get("generation_before"), results),
                 samples_table(train.get("generation_samples")))
        return [p for p in parts if p]
