"""Generative data preparation: completion-only labels, EOS, chat rows, truncation policy, bad input."""
from __future__ import annotations

import pytest
from generation_helpers import PAIRS, pair_rows, tiny_decoder, write_jsonl

from graftkit.config import DataConfig
from graftkit.errors import ConfigError, DataError
from graftkit.tasks.causal_lm import CausalLmTask
from graftkit.tasks.causal_lm.config import CausalLmConfig
from graftkit.tasks.common.generation.config import GenerationSettings
from graftkit.tasks.seq2seq import Seq2SeqTask
from graftkit.tasks.seq2seq.config import Seq2SeqConfig
from graftkit.tasks.capabilities import Generates, TrainsWithTrainer

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def tokenizer(request, tmp_path_factory):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_decoder(tmp_path_factory.mktemp(request.param), request.param))
    tok.pad_token = tok.pad_token or tok.eos_token  # what graftkit's loader does for GPT-style tokenizers
    return tok


def _train(task):
    return task.capability(TrainsWithTrainer, "train")


def _task(tmp_path, rows, max_length=64, **task_keys):
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    data = DataConfig(train=str(path), max_length=max_length)
    task = CausalLmTask(CausalLmConfig(**task_keys), data)
    examples, _ = task.read(str(path), data)
    task.fit(examples)
    return task, examples, path


def test_labels_are_minus_100_over_every_prompt_token_and_eos_is_learned(tmp_path, tokenizer):
    task, examples, _ = _task(tmp_path, pair_rows())
    ds = _train(task).build_dataset(examples, tokenizer, 64)
    for (prompt, completion), row in zip(PAIRS, ds):
        n_prompt = len(tokenizer(prompt)["input_ids"])
        assert row["labels"][:n_prompt] == [-100] * n_prompt
        assert row["labels"][n_prompt:] == row["input_ids"][n_prompt:]
        assert row["labels"][-1] == tokenizer.eos_token_id  # EOS is a target even though pad == eos
        assert tokenizer.decode(row["labels"][n_prompt:-1]) == completion


def test_collator_pads_with_minus_100_but_keeps_the_eos_label_when_pad_is_eos(tmp_path, tokenizer):
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    task, examples, _ = _task(tmp_path, [{"prompt": "red apple", "completion": "red"},
                                         {"prompt": "blue sky", "completion": "the sky is blue and the apple is red"}])
    ds = _train(task).build_dataset(examples, tokenizer, 64)
    batch = _train(task).collator(tokenizer)([ds[0], ds[1]])
    short = len(ds[0]["input_ids"])
    assert batch["labels"][0, short - 1].item() == tokenizer.eos_token_id
    assert (batch["labels"][0, short:] == -100).all() and (batch["attention_mask"][0, short:] == 0).all()


def test_packing_restarts_position_ids_per_example(tmp_path, tokenizer):
    task, examples, _ = _task(tmp_path, pair_rows(), packing=True)
    ds = _train(task).build_dataset(examples, tokenizer, 64)
    assert len(ds) == 1  # four short examples fit one 64-token row
    batch = _train(task).collator(tokenizer)([ds[0]])
    lengths = ds[0]["seq_lengths"]
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    assert [i for i, p in enumerate(batch["position_ids"][0].tolist()) if p == 0] == starts
    assert "attention_mask" not in batch


def test_chat_rows_use_the_tokenizer_chat_template(tmp_path, tokenizer):
    tokenizer.chat_template = CHAT_TEMPLATE
    try:
        rows = [{"messages": [{"role": "user", "content": "red apple"}, {"role": "assistant", "content": "it is red"}]}]
        task, examples, _ = _task(tmp_path, rows)
        row = _train(task).build_dataset(examples, tokenizer, 64)[0]
        prompt_text = "<|user|>red apple<|end|><|assistant|>"
        n_prompt = len(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
        assert tokenizer.decode(row["input_ids"][:n_prompt]) == prompt_text
        assert row["labels"][:n_prompt] == [-100] * n_prompt
        assert tokenizer.decode(row["labels"][n_prompt:]) == "it is red<|end|>" + tokenizer.eos_token
        generates = task.capability(Generates, "generate")
        assert generates.prompt_ids([examples[0].extra["messages"]], tokenizer)[0] == row["input_ids"][:n_prompt]
    finally:
        tokenizer.chat_template = None


def test_chat_rows_without_a_template_use_the_documented_plain_one(tmp_path, tokenizer):
    rows = [{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "sky"},
                          {"role": "assistant", "content": "blue"}]}]
    task, examples, _ = _task(tmp_path, rows)
    row = _train(task).build_dataset(examples, tokenizer, 64)[0]
    n_prompt = row["labels"].index(next(t for t in row["labels"] if t != -100))
    assert "<|system|>\nbe brief\n<|user|>\nsky\n<|assistant|>\n" in tokenizer.decode(row["input_ids"][:n_prompt])
    assert tokenizer.decode(row["labels"][n_prompt:]) == "blue" + tokenizer.eos_token


def test_text_rows_learn_the_whole_text(tmp_path, tokenizer):
    task, examples, _ = _task(tmp_path, [{"text": "the sky is blue"}])
    row = _train(task).build_dataset(examples, tokenizer, 64)[0]
    targets = [t for t in row["labels"] if t != -100]
    assert tokenizer.decode(targets) == "the sky is blue" + tokenizer.eos_token


def test_long_prompt_keeps_its_end_and_bos(tmp_path, tokenizer):
    prompt = " ".join(["red apple blue sky"] * 20)
    task, examples, _ = _task(tmp_path, [{"prompt": prompt, "completion": "the sky is blue"}], max_length=24)
    row = _train(task).build_dataset(examples, tokenizer, 24)[0]
    assert len(row["input_ids"]) == 24 and task.truncated_prompts == 1
    full = tokenizer(prompt)["input_ids"]
    n_prompt = row["labels"].count(-100)
    if tokenizer.bos_token_id is not None and full[0] == tokenizer.bos_token_id and tokenizer.bos_token != tokenizer.eos_token:
        assert row["input_ids"][0] == tokenizer.bos_token_id
        assert row["input_ids"][1:n_prompt] == full[len(full) - n_prompt + 1:]
    else:
        assert row["input_ids"][:n_prompt] == full[len(full) - n_prompt:]


# -- bad input: each names file, line and field -----------------------------------------------------
def _error(tmp_path, rows) -> DataError:
    with pytest.raises(DataError) as info:
        _task(tmp_path, rows)
    return info.value


def test_empty_completion_is_an_error(tmp_path):
    err = _error(tmp_path, [{"prompt": "a", "completion": "b"}, {"prompt": "red", "completion": "  "}])
    assert (err.line, err.field) == (2, "completion") and "empty completion" in str(err)
    assert err.path.endswith("train.jsonl")


def test_missing_column_is_an_error(tmp_path):
    err = _error(tmp_path, [{"prompt": "a", "completion": "b"}, {"prompt": "red"}])
    assert err.line == 2 and "missing column 'completion'" in str(err)


def test_unknown_role_is_an_error(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]}]
    err = _error(tmp_path, rows)
    assert (err.line, err.field) == (1, "messages[1].role") and "unknown role 'bot'" in str(err)


def test_messages_without_assistant_turn_is_an_error(tmp_path):
    err = _error(tmp_path, [{"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}]}])
    assert (err.line, err.field) == (1, "messages") and "no assistant turn" in str(err)


def test_messages_ending_with_a_user_turn_is_an_error(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
                          {"role": "user", "content": "and?"}]}]
    err = _error(tmp_path, rows)
    assert err.field == "messages[2]" and "must be the assistant's reply" in str(err)


def test_completion_that_leaves_no_room_is_an_error_never_cut(tmp_path, tokenizer):
    rows = [{"prompt": "red apple", "completion": " ".join(["the sky is blue"] * 10)}]
    with pytest.raises(DataError) as info:
        task, examples, _ = _task(tmp_path, rows, max_length=16)
        _train(task).build_dataset(examples, tokenizer, 16)
    err = info.value
    assert (err.line, err.field) == (1, "completion") and "never cut" in str(err)


def test_prompt_truncation_error_policy(tmp_path, tokenizer):
    rows = [{"prompt": " ".join(["red apple"] * 30), "completion": "red"}]
    with pytest.raises(DataError) as info:
        task, examples, _ = _task(tmp_path, rows, max_length=16, prompt_truncation="error")
        _train(task).build_dataset(examples, tokenizer, 16)
    assert (info.value.line, info.value.field) == (1, "prompt") and "prompt_truncation" in str(info.value)


def test_drop_invalid_counts_bad_rows(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": ""}])
    data = DataConfig(train=str(path), drop_invalid=True)
    examples, dropped = CausalLmTask(CausalLmConfig(), data).read(str(path), data)
    assert (len(examples), dropped) == (1, 1)


def test_seq2seq_rejects_chat_rows_and_long_targets(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    path = write_jsonl(tmp_path / "c.jsonl", [{"messages": [{"role": "user", "content": "a"},
                                                            {"role": "assistant", "content": "b"}]}])
    data = DataConfig(train=str(path))
    with pytest.raises(DataError, match="not supported by task.type seq2seq"):
        Seq2SeqTask(Seq2SeqConfig(), data).read(str(path), data)
    path = write_jsonl(tmp_path / "s.jsonl", [{"src": "a b", "tgt": " ".join(["word"] * 40)}])
    data = DataConfig(train=str(path))
    task = Seq2SeqTask(Seq2SeqConfig(prompt_column="src", completion_column="tgt", max_target_length=16), data)
    examples, _ = task.read(str(path), data)
    with pytest.raises(DataError) as info:
        _train(task).build_dataset(examples, AutoTokenizer.from_pretrained(tiny_model_dir), 32)
    assert (info.value.line, info.value.field) == (1, "tgt") and "never cut" in str(info.value)


def test_seq2seq_labels_end_with_sep_and_skip_the_decoder_start(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    path = write_jsonl(tmp_path / "s.jsonl", pair_rows())
    data = DataConfig(train=str(path))
    task = Seq2SeqTask(Seq2SeqConfig(), data)
    examples, _ = task.read(str(path), data)
    row = _train(task).build_dataset(examples, tok, 32)[0]
    assert row["labels"][0] != tok.cls_token_id and row["labels"][-1] == tok.sep_token_id
    assert tok.decode(row["labels"][:-1]) == PAIRS[0][1]


# -- generation settings ------------------------------------------------------------------------------
def test_generation_overrides_are_checked_against_the_limit():
    s = GenerationSettings(max_new_tokens=32, max_new_tokens_limit=64)
    assert s.override(max_new_tokens=64, num_beams=None).max_new_tokens == 64
    with pytest.raises(ConfigError, match="exceeds max_new_tokens_limit=64"):
        s.override(max_new_tokens=65)
    with pytest.raises(ConfigError, match="top_p"):
        s.override(top_p=1.5)
    with pytest.raises(ConfigError, match="fixed by the run"):
        s.override(max_new_tokens_limit=1000)
    assert "temperature" not in s.decoding() and s.override(do_sample=True).decoding()["temperature"] == 1.0
