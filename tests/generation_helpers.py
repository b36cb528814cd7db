"""Tiny generative models for the generation tests: a byte-level BPE tokenizer trained on the fly
(no hub access), and random GPT-2 / Llama / BERT2BERT checkpoints built from small configs."""
from __future__ import annotations

import json
from pathlib import Path

PAIRS = [("red apple", "the apple is red"), ("blue sky", "the sky is blue"),
         ("green leaf", "a leaf is green"), ("black cat", "my cat is black")]


def bpe_tokenizer(texts: list[str], bos: str, eos: str, vocab_size: int = 400):
    """A GPT-2-style byte-level BPE tokenizer (no pad token, like GPT-2 and Llama)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = list(dict.fromkeys([bos, eos]))
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos)


def corpus() -> list[str]:
    return [f"{p} {c}" for p, c in PAIRS] * 4 + ["the a is my of and to in"]


def tiny_decoder(out: Path, arch: str = "gpt2", texts: list[str] | None = None, seed: int = 0,
                 layers: int = 2, width: int = 64) -> str:
    """Save a random decoder + tokenizer to ``out``; GPT-2 uses <|endoftext|> for BOS = EOS (pad unset)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    texts = texts or corpus()
    if arch == "gpt2":
        tok = bpe_tokenizer(texts, "<|endoftext|>", "<|endoftext|>")
        cfg = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=width, n_layer=layers, n_head=2,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        model = GPT2LMHeadModel(cfg)
    else:
        tok = bpe_tokenizer(texts, "<s>", "</s>")
        from tokenizers.processors import TemplateProcessing

        # Llama tokenizers put BOS before every text
        tok.backend_tokenizer.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)])
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=width, intermediate_size=2 * width,
                          num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                          max_position_embeddings=128, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        model = LlamaForCausalLM(cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def pair_rows(pairs=PAIRS, prompt: str = "prompt", completion: str = "completion") -> list[dict]:
    return [{prompt: p, completion: c} for p, c in pairs]


def one_step_decoder_run(tmp: Path, generation: dict) -> Path:
    """A causal_lm run trained for one step on PAIRS (its text is nonsense; it rarely says EOS, so rows run
    to their max_new_tokens): what the serving tests load."""
    from conftest import run_config

    from graftkit.train.trainer import train

    path = write_jsonl(tmp / "pairs.jsonl", pair_rows())
    cfg = run_config(tmp, tiny_decoder(tmp / "base"), path,
                     data={"train": str(path), "validation": str(path), "test": str(path), "max_length": 32},
                     task={"type": "causal_lm", "generation": generation, "eval_samples": 0},
                     train={"max_steps": 1, "batch_size": 4, "warmup": 0},
                     eval={"plots": False, "save_predictions": False})
    return train(cfg, log=lambda m: None).path
