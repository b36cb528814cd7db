"""Config keys shared by `task.type: causal_lm` and `task.type: seq2seq`.

Decoding settings live in ``task.generation``; they are written into the run folder's
``generation_config.json`` (transformers 5 reads generation keys only from ``generation_config``,
never from ``model.config``). Overrides from the CLI or a request are validated against the same
model, so ``max_new_tokens`` can never exceed ``max_new_tokens_limit``.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from graftkit.config import TaskConfigBase, _Strict
from graftkit.errors import ConfigError

#: the GenerationSettings keys that are decoding settings (the rest are limits)
DECODING_KEYS = ("max_new_tokens", "num_beams", "do_sample", "temperature", "top_p", "repetition_penalty",
                 "no_repeat_ngram_size")


class GenerationSettings(_Strict):
    """Decoding settings saved as ``generation_config.json``; the limit caps every later override."""

    max_new_tokens: int = Field(64, ge=1, le=4096, description="tokens generated at most per input")
    num_beams: int = Field(1, ge=1, le=16, description="beam search width (1 = greedy or sampling)")
    do_sample: bool = Field(False, description="sample instead of greedy / beam search")
    temperature: float = Field(1.0, gt=0.0, le=5.0, description="sampling temperature (do_sample only)")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling mass (do_sample only)")
    repetition_penalty: float = Field(1.0, gt=0.0, le=10.0)
    no_repeat_ngram_size: int = Field(0, ge=0, le=16, description="forbid repeating n-grams of this size; 0 = off")
    max_new_tokens_limit: int = Field(512, ge=1, le=4096, description="largest max_new_tokens a CLI flag or an "
                                      "HTTP request may ask for")

    @model_validator(mode="after")
    def _within_limit(self) -> "GenerationSettings":
        if self.max_new_tokens > self.max_new_tokens_limit:
            raise ValueError(f"max_new_tokens={self.max_new_tokens} exceeds max_new_tokens_limit="
                             f"{self.max_new_tokens_limit}")
        return self

    def decoding(self) -> dict[str, Any]:
        """The keys transformers' ``GenerationConfig`` takes (sampling keys only when sampling)."""
        out = {k: getattr(self, k) for k in DECODING_KEYS}
        if not self.do_sample:  # transformers warns about temperature/top_p set without sampling
            out.pop("temperature")
            out.pop("top_p")
        return out

    def override(self, **changes: Any) -> "GenerationSettings":
        """A copy with ``changes`` (None values ignored), validated against the limits.

        Raises:
            ConfigError: a value out of range, or max_new_tokens above max_new_tokens_limit.
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        if "max_new_tokens_limit" in changes:
            raise ConfigError("max_new_tokens_limit is fixed by the run; it cannot be overridden")
        try:
            return GenerationSettings.model_validate({**self.model_dump(), **changes})
        except ValidationError as err:
            msgs = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'generation'}: {e['msg']}" for e in err.errors())
            raise ConfigError(f"generation override rejected: {msgs}") from None


class GenerativeConfig(TaskConfigBase):
    """Keys both generative tasks have; each task's config adds its own."""

    prompt_column: str = Field("prompt", description="column of the input text (E2E: mr)")
    completion_column: str = Field("completion", description="column of the target text (E2E: ref)")
    generation: GenerationSettings = GenerationSettings()
    eval_samples: int = Field(64, ge=0, description="validation inputs generated at each evaluation, so the best "
                              "checkpoint is chosen by the task metric (0 = by loss only)")
    eval_batch_size: int = Field(16, ge=1, description="inputs per generate() call during evaluation")
    metric_tokenization: Literal["auto", "words", "chars"] = Field(
        "auto", description="chars: BLEU with sacrebleu's 'zh' tokenizer and ROUGE over characters (Chinese); "
        "auto: chars when most reference characters are CJK")
    worst_examples: int = Field(20, ge=0, description="lowest-ROUGE-L inputs listed in predictions/<split>/worst.jsonl")
    gradient_checkpointing: bool = Field(False, description="recompute activations in the backward pass "
                                         "(less memory, ~30% slower)")
