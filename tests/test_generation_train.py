"""Generative runs through graftkit's one training path: overfit → exact greedy reproduction that stops,
save/reload, LoRA → merge → reload, the run folder's generation files, streaming and file generation."""
from __future__ import annotations

import hashlib
import json
import threading

import pytest
from conftest import run_config
from generation_helpers import PAIRS, pair_rows, tiny_decoder, write_jsonl

from graftkit.errors import ConfigError, ExportError
from graftkit.inference.generator import Generator

PROMPTS = [p for p, _ in PAIRS]
COMPLETIONS = [c for _, c in PAIRS]


def _train(tmp_path, model_dir, task: dict, name="t", rows=None, lr: float = 3e-3, **sections):
    from graftkit.train.trainer import train

    path = write_jsonl(tmp_path / f"{name}.jsonl", rows or pair_rows())
    cfg = run_config(tmp_path, model_dir, path, name=name,
                     data={"train": str(path), "validation": str(path), "test": str(path), "max_length": 32},
                     task={"generation": {"max_new_tokens": 12}, "eval_samples": 4, **task},
                     train={"max_steps": sections.pop("steps", 150), "batch_size": 4, "learning_rate": lr,
                            "warmup": 0, "logging_steps": 50, "eval_strategy": "steps", "eval_steps": 75,
                            "eval_batch_size": 4},
                     **sections)
    return train(cfg, log=lambda m: None)


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def decoder_run(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"causal-{request.param}")
    return _train(tmp, tiny_decoder(tmp / "base", request.param), {"type": "causal_lm"})


def test_overfit_decoder_reproduces_every_completion_exactly_and_stops(decoder_run):
    g = Generator(decoder_run.path)
    # 12 new tokens allowed: an exact match means the model emitted EOS right after the completion
    assert g.generate(PROMPTS) == COMPLETIONS
    assert [g.generate([p])[0] for p in PROMPTS] == COMPLETIONS  # batched (left-padded) == one at a time


def test_run_folder_has_generation_config_predictions_and_a_decoding_card(decoder_run):
    gc = json.loads((decoder_run.path / "generation_config.json").read_text())
    assert gc["max_new_tokens"] == 12 and gc["num_beams"] == 1 and gc["do_sample"] is False
    rows = [json.loads(x) for x in (decoder_run.predictions / "test" / "generations.jsonl").read_text().splitlines()]
    assert [r["output"] for r in rows] == COMPLETIONS and all(r["scores"]["exact_match"] == 100 for r in rows)
    assert (decoder_run.predictions / "test" / "worst.jsonl").is_file()
    metrics = json.loads(decoder_run.metrics.read_text())
    assert metrics["test"]["exact_match"] == 100 and metrics["test"]["bleu"] > 99
    history = json.loads(decoder_run.history.read_text())
    assert any("eval_rougeL" in h for h in history)  # validation by generation during training
    card = decoder_run.card.read_text()
    assert "## Decoding" in card and "max_new_tokens" in card


def test_streaming_yields_the_same_text_in_order_and_cancel_stops_it(decoder_run):
    g = Generator(decoder_run.path)
    chunks = list(g.stream(PROMPTS[0]))
    assert len(chunks) > 1 and "".join(chunks).strip() == COMPLETIONS[0]
    cancel = threading.Event()
    cancel.set()  # already cancelled: generation stops after its first step
    assert len(list(g.stream(PROMPTS[1], cancel=cancel))) <= 1
    stream = g.stream(PROMPTS[1])
    next(stream)
    stream.close()  # the consumer went away: the generating thread is stopped and joined, the lock released
    assert g.generate(PROMPTS[:1]) == COMPLETIONS[:1]


def test_cli_generate_streams_to_stdout_and_rejects_bad_overrides(decoder_run):
    from typer.testing import CliRunner

    from graftkit.cli.main import app

    result = CliRunner().invoke(app, ["generate", str(decoder_run.path), PROMPTS[0], PROMPTS[3]])
    assert result.exit_code == 0 and result.stdout.splitlines() == [COMPLETIONS[0], COMPLETIONS[3]]
    result = CliRunner().invoke(app, ["generate", str(decoder_run.path), PROMPTS[0], "--max-new-tokens", "1000"])
    assert result.exit_code == 2 and "max_new_tokens_limit" in result.output


def test_overrides_are_checked_against_the_run_limit(decoder_run):
    g = Generator(decoder_run.path)
    with pytest.raises(ConfigError, match="max_new_tokens_limit"):
        g.generate(PROMPTS, max_new_tokens=1000)
    assert len(g.generate(PROMPTS[:1], max_new_tokens=1)[0].split()) <= 1


def test_generate_file_is_batched_and_resumes(decoder_run, tmp_path):
    from graftkit.inference.generate_file import generate_file

    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": p} for p in PROMPTS])
    out = tmp_path / "out.jsonl"
    g = Generator(decoder_run.path)
    assert generate_file(g, src, out, batch_size=3) == 4
    lines = out.read_text().splitlines()
    assert [json.loads(x)["generated"] for x in lines] == COMPLETIONS
    from graftkit.inference.predict_file import sidecar_path

    record = json.loads(sidecar_path(out).read_text())
    prefix = src.read_bytes()[:len("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS[:3]).encode())]
    out.write_text("\n".join(lines[:3]) + "\n" + lines[3][:5])  # killed while writing the second batch
    sidecar_path(out).write_text(json.dumps({**record, "rows": 3, "input_bytes": len(prefix),
                                             "input_sha256": hashlib.sha256(prefix).hexdigest()}))
    assert generate_file(g, src, out, batch_size=3) == 1  # continues after the recorded three
    assert [json.loads(x)["generated"] for x in out.read_text().splitlines()] == COMPLETIONS
    assert generate_file(g, src, out, batch_size=3, overwrite=True) == 4
    with pytest.raises(Exception, match="another run or model"):  # other decoding settings: no silent mix
        generate_file(g, src, out, batch_size=3, max_new_tokens=3)


def test_generative_runs_refuse_onnx_export_in_one_line(decoder_run):
    from graftkit.export.onnx import export_onnx

    with pytest.raises(ExportError, match="optimum-onnx") as info:
        export_onnx(decoder_run.path, decoder_run.path / "x.onnx")
    assert "\n" not in str(info.value)


def test_chat_rows_train_and_generate(tmp_path):
    rows = [{"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": c}]} for p, c in PAIRS]
    run = _train(tmp_path, tiny_decoder(tmp_path / "base"), {"type": "causal_lm"}, name="chat", rows=rows)
    g = Generator(run.path)
    assert g.generate([[{"role": "user", "content": p}] for p in PROMPTS]) == COMPLETIONS


def test_lora_decoder_merge_and_reload_give_the_same_outputs(tmp_path):
    from transformers import AutoModelForCausalLM

    from graftkit.export.merge import merge_run

    run = _train(tmp_path, tiny_decoder(tmp_path / "base"), {"type": "causal_lm"}, name="lora",
                 peft={"method": "lora", "r": 8, "alpha": 16, "dropout": 0.0}, steps=60)
    assert (run.path / "adapter_config.json").is_file() and (run.path / "generation_config.json").is_file()
    adapter_out = Generator(run.path).generate(PROMPTS)
    merged = merge_run(run.path)
    assert Generator(merged).generate(PROMPTS) == adapter_out
    AutoModelForCausalLM.from_pretrained(str(merged))  # a plain transformers folder
    assert json.loads((merged / "generation_config.json").read_text())["max_new_tokens"] == 12


def test_seq2seq_bert2bert_overfits(tmp_path, tiny_model_dir):
    run = _train(tmp_path, tiny_model_dir, {"type": "seq2seq"}, name="s2s", steps=200)
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["model_type"] == "encoder-decoder" and cfg["decoder_start_token_id"] == 101  # [CLS]
    assert Generator(run.path).generate(PROMPTS) == COMPLETIONS


def test_seq2seq_rejects_peft_on_a_warm_started_encoder_decoder(tmp_path, tiny_model_dir):
    with pytest.raises(ConfigError, match="cross-attention"):
        _train(tmp_path, tiny_model_dir, {"type": "seq2seq"}, name="s2s-lora", peft={"method": "lora"}, steps=2)


@pytest.mark.slow
def test_bundled_minilm_bert2bert_learns_the_pairs(tmp_path):
    """The offline pretrained-initialised generator: MiniLM warm-started as BERT2BERT, through graftkit train."""
    run = _train(tmp_path, "bundled:minilm", {"type": "seq2seq"}, name="minilm-s2s", steps=80, lr=3e-4)
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["encoder"]["hidden_size"] == 384 and cfg["decoder"]["add_cross_attention"] is True
    outputs = Generator(run.path).generate(PROMPTS)
    metrics = json.loads(run.metrics.read_text())["test"]
    assert sum(o == c for o, c in zip(outputs, COMPLETIONS)) >= 2 and metrics["rougeL"] > 60
