"""DPO on chat-format pairs (trl's conversational format): an explicit prompt with the two replies, or two whole
conversations sharing their prompt turns. trl renders them with the tokenizer's chat template; a tokenizer
without one, conversations with different prompt turns and malformed rows are refused by file and line. The
card shows trl's reward accuracy and margin on validation, the measured KL to the reference and sample generations."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from conftest import run_config
from generation_helpers import PAIRS, corpus, tiny_decoder, write_jsonl
from graftkit.data.readers import Row
from graftkit.errors import DataError
from graftkit.inference.runs import open_run
from graftkit.tasks.capabilities import Generates
from graftkit.tasks.preference import rows
from graftkit.tasks.preference import train as preference_train
from graftkit.tasks.preference.config import PreferenceConfig
from graftkit.train.trainer import train

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SYSTEM = {"role": "system", "content": "answer in one sentence"}


def _user(text: str) -> list[dict]:
    return [SYSTEM, {"role": "user", "content": text}]


def _reply(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


#: explicit prompt: chosen the pair's own completion, rejected another pair's
EXPLICIT = [{"prompt": _user(p), "chosen": _reply(c), "rejected": _reply(PAIRS[(i + 1) % len(PAIRS)][1])}
            for i, (p, c) in enumerate(PAIRS)]
#: the same pairs as whole conversations (trl's implicit prompt)
IMPLICIT = [{"chosen": r["prompt"] + r["chosen"], "rejected": r["prompt"] + r["rejected"]} for r in EXPLICIT]


def chat_decoder(out: Path, template: str | None = CHATML) -> str:
    """A tiny random decoder whose tokenizer has ``template`` (its BPE learned the template's marks)."""
    marks = "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|im_start|>assistant\n"
    path = tiny_decoder(out, texts=corpus() + [marks] * 8 + [SYSTEM["content"]] * 4)
    if template:
        tok = AutoTokenizer.from_pretrained(path)
        tok.chat_template = template
        tok.save_pretrained(path)
    return path


def _cfg(tmp_path, base, data_rows, **task):
    path = write_jsonl(tmp_path / "prefs.jsonl", data_rows * 2)
    data = {"train": str(path), "validation": str(path), "test": str(path), "max_length": 64}
    return run_config(tmp_path, base, path, data=data,
                      task={"type": "preference", "eval_samples": 0, "generation": {"max_new_tokens": 4}, **task},
                      train={"max_steps": 8, "batch_size": 4, "learning_rate": 5e-3, "warmup": 0,
                             "logging_steps": 4, "eval_strategy": "steps", "eval_steps": 100})


def _example(values: dict, method: str = "dpo", with_labels: bool = True):
    return rows.row_example(Row(values, "pairs.jsonl", 7), PreferenceConfig(method=method), with_labels)


def test_explicit_and_implicit_prompts_read_to_the_same_pair():
    for explicit, implicit in zip(EXPLICIT, IMPLICIT):
        a, b = _example(explicit), _example(implicit)
        assert a == b and a.extra["format"] == "chat" and a.extra["messages"] == explicit["prompt"]
        assert a.label == explicit["chosen"][0]["content"] and a.extra["rejected"] == explicit["rejected"][0]["content"]
    # as in trl, a text prompt beside two whole conversations is ignored: the conversations hold the prompt
    assert _example({"prompt": "ignored", **IMPLICIT[0]}) == _example(IMPLICIT[0])
    assert _example({"prompt": _user("hi")}, with_labels=False).extra["messages"] == _user("hi")


def test_dpo_renders_chat_pairs_with_the_tokenizers_template(tmp_path, monkeypatch):
    base = chat_decoder(tmp_path / "base")
    config_cls, trainer_cls = preference_train.TRAINERS["dpo"]
    seen = {}

    class Recorded(trainer_cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen["trainer"] = self

    monkeypatch.setitem(preference_train.TRAINERS, "dpo", (config_cls, Recorded))
    run = train(_cfg(tmp_path, base, IMPLICIT), log=lambda m: None).path
    tok = AutoTokenizer.from_pretrained(base)
    got = {(tok.decode(r["prompt_ids"]), tok.decode(r["chosen_ids"]), tok.decode(r["rejected_ids"]))
           for r in seen["trainer"].train_dataset}
    want = {(tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False),
             r["chosen"][0]["content"] + "<|im_end|>\n", r["rejected"][0]["content"] + "<|im_end|>\n")
            for r in EXPLICIT}
    assert got == want and "<|im_start|>system\nanswer in one sentence" in next(iter(got))[0]
    runner = open_run(run)  # the run takes chat prompts, rendered with the same template
    assert runner.task.capability(Generates, "generate").takes_chat
    assert isinstance(runner.predict([EXPLICIT[0]["prompt"]])[0].generated, str)
    pref = json.loads((run / "metrics.json").read_text())["train"]["preference_validation"]
    card = (run / "README.md").read_text()
    assert f"| reward margin | {pref['rewards/margins']:.4f} |" in card
    assert f"| reward accuracy | {pref['rewards/accuracies']:.4f} |" in card
    assert pref["kl_to_reference"] > 0  # measured on the template-rendered completions
    assert f"| KL to the reference (per completion) | {pref['kl_to_reference']:.4f} |" in card
    samples = json.loads((run / "metrics.json").read_text())["train"]["generation_samples"]
    assert [s["reference"] for s in samples] == [r["chosen"][0]["content"] for r in EXPLICIT]
    assert samples[0]["after"] == runner.predict([EXPLICIT[0]["prompt"]])[0].generated


def test_a_tokenizer_without_a_chat_template_is_refused_by_file_and_line(tmp_path):
    base = chat_decoder(tmp_path / "base", template=None)
    with pytest.raises(DataError, match=r"prefs\.jsonl, line 1: chat-format pairs .* has none"):
        train(_cfg(tmp_path, base, EXPLICIT), log=lambda m: None)


def test_conversations_with_different_prompt_turns_are_refused(tmp_path):
    other = {"chosen": IMPLICIT[1]["chosen"], "rejected": _user("something else") + _reply("no")}
    with pytest.raises(DataError, match=r"line 3, field 'rejected\[1\]'.*do not share the same prompt turns"):
        train(_cfg(tmp_path, chat_decoder(tmp_path / "base"), IMPLICIT[:2] + [other]), log=lambda m: None)


@pytest.mark.parametrize("values, where, why", [
    ({"prompt": _user("a"), "chosen": _reply("same"), "rejected": _reply("same ")}, "rejected", "identical"),
    ({"prompt": _user("a"), "chosen": _reply(" "), "rejected": _reply("b")}, r"chosen\[0\]\.content", "empty"),
    ({"prompt": [{"role": "robot", "content": "a"}], "chosen": _reply("x"), "rejected": _reply("y")},
     r"prompt\[0\]", "role one of system, user, assistant"),
    ({"prompt": _user("a"), "chosen": _user("a") + _reply("x"), "rejected": _reply("y")}, "chosen",
     "one assistant message; found: system, user, assistant"),
    ({"prompt": _user("a"), "chosen": _reply("x"), "rejected": "y"}, "rejected", "both be conversations"),
    ({"chosen": _reply("x"), "rejected": _reply("y")}, "chosen", "no prompt turns"),
    ({"prompt": [], "chosen": _reply("x"), "rejected": _reply("y")}, "prompt", "empty conversation"),
])
def test_bad_chat_rows_are_refused_by_line_and_field(values, where, why):
    with pytest.raises(DataError, match=rf"pairs\.jsonl, line 7, field '{where}'.*{why}"):
        _example(values)


def test_chat_rows_mixed_with_text_rows_and_kto_chat_rows_are_refused(tmp_path):
    base = chat_decoder(tmp_path / "base")
    mixed = EXPLICIT[:2] + [{"prompt": "red apple", "chosen": "the apple is red", "rejected": "no"}]
    with pytest.raises(DataError, match=r"line 3: prompt_completion rows, but the training file has chat rows"):
        train(_cfg(tmp_path, base, mixed), log=lambda m: None)
    with pytest.raises(DataError, match=r"line 7, field 'completion'.*read for DPO"):
        _example({"prompt": "a", "completion": _reply("x"), "label": True}, method="kto")


def test_a_prompt_that_fills_max_length_is_refused_by_line(tmp_path):
    """trl would drop such a pair without a word (no completion token fits); graftkit names it."""
    base = chat_decoder(tmp_path / "base")
    long = {**EXPLICIT[1], "prompt": _user("red apple " * 40)}
    with pytest.raises(DataError, match=r"prefs\.jsonl, line 2, field 'prompt': the prompt is \d+ tokens.*"
                                        r"max_length=64"):
        train(_cfg(tmp_path, base, [EXPLICIT[0], long]), log=lambda m: None)
    text = [{"prompt": "blue sky " * 40, "chosen": "a", "rejected": "b"}]
    with pytest.raises(DataError, match=r"prefs\.jsonl, line 1, field 'prompt': the prompt is \d+ tokens"):
        train(_cfg(tmp_path, base, text), log=lambda m: None)
