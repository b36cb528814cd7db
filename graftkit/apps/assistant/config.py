"""The assistant's one YAML file: the runs, the out-of-scope thresholds, the store, and the replies."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graftkit.apps.store import resolve_store_url
from graftkit.config import ConfigPath, explain_validation, read_yaml_mapping, resolve_config_paths


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Thresholds(_Strict):
    """When the assistant answers. An intent run with an out-of-scope detector decides by the detector's score;
    an older run without one by the intent confidence. The FAQ similarity is an extra signal on top of either."""

    out_of_scope_score: float | None = Field(None, description="detector score above which a question is out of "
                                             "scope (None: the intent run's own threshold, chosen on its "
                                             "validation); only for an intent run with a detector")
    intent_confidence: float | None = Field(None, ge=0, le=1, description="minimum intent probability (None: "
                                            "0.5); only for an intent run without a detector")
    retrieval_similarity: float | None = Field(None, ge=-1, le=1, description="minimum cosine similarity of "
                                               "the best FAQ entry (None: not used)")


class GenerationSettings(_Strict):
    """Generated (retrieval-augmented) replies from a causal_lm / seq2seq run instead of the FAQ answer."""

    run: Annotated[str, ConfigPath()]
    prompt: str = Field("Answer the customer's question using the FAQ answers.\nFAQ:\n{context}\n"
                        "Question: {question}\nAnswer:", description="{context} and {question} are filled in")
    max_new_tokens: int = Field(96, ge=1)


class AssistantConfig(_Strict):
    """Everything `graftkit assistant` needs."""

    intent_run: Annotated[str, ConfigPath()] = Field(..., description="single-label classification run over the intents")
    retrieval_run: Annotated[str | None, ConfigPath()] = Field(None, description="embedding run with an FAQ index (graftkit index)")
    index: str = Field("default", description="index name beside the retrieval run")
    rerank_run: Annotated[str | None, ConfigPath()] = Field(None, description="pair classification run that re-ranks FAQ hits")
    positive_label: str | None = None
    oos_label: str | None = Field(None, description="the intent run's trained out-of-scope class, if it has one")
    handoff_intents: list[str] = Field(default_factory=list, description="intents always handed to a person "
                                                                         "(e.g. talk_to_agent)")
    thresholds: Thresholds = Thresholds()
    k: int = Field(3, ge=1, description="FAQ entries returned")
    followup_max_words: int = Field(8, ge=0, description="a message of at most this many words that leans on the "
                                                         "previous turn may be read as a follow-up of its intent")
    generation: GenerationSettings | None = None
    reward_run: Annotated[str | None, ConfigPath()] = Field(
        None, description="reward run (task.type reward) that scores each candidate reply (the FAQ answers shown and "
        "the generated reply) for the message; the best-scored one is the reply (None: the generated reply, else the "
        "top FAQ answer)")
    store: str = Field("sqlite:///assistant.db", description="SQLAlchemy URL of the session store")
    store_retries: int = Field(5, ge=1)
    store_backoff_s: float = Field(0.5, ge=0)
    handoff_message: str = "I'm not sure I can help with that; I'm passing you to a colleague."


def assistant_config_from_dict(tree: dict, source: str = "assistant config",
                               base_dir: Path | None = None) -> AssistantConfig:
    """Validate ``tree``; relative paths (runs, an SQLite file) resolve against ``base_dir`` (the rule of
    :class:`graftkit.config.ConfigPath`)."""
    try:
        cfg = AssistantConfig.model_validate(tree)
    except ValidationError as err:
        raise explain_validation(err, f"{source} (assistant config)") from None
    if base_dir is not None:
        resolve_config_paths(cfg, base_dir)
        cfg.store = resolve_store_url(cfg.store, base_dir)
    return cfg


def load_assistant_config(path: str | Path) -> AssistantConfig:
    """The assistant config in a YAML file."""
    path = Path(path)
    tree = read_yaml_mapping(path, "assistant config")
    return assistant_config_from_dict(tree, str(path), path.parent)
