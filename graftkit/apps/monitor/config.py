"""The monitor's one YAML file: runs, topics, store, detection rules and alert delivery.

Unknown keys are rejected and errors name the dotted key (like the run config).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from graftkit.apps.store import resolve_store_url
from graftkit.config import ConfigPath, explain_validation, read_yaml_mapping, resolve_config_paths


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TopicsConfig(_Strict):
    """Where an item's topics come from (an item may have several)."""

    source: Literal["entity", "ner", "topic"] = Field(
        "entity", description="entity: the item's own entity/ticker field; ner: entities an NER run finds; "
                              "topic: labels of a (multi-label) classification run")
    run: Annotated[str | None, ConfigPath()] = Field(None, description="the NER or topic run folder (source: ner / topic)")
    entity_types: list[str] = Field(["ORG"], description="ner: entity types that become topics")
    min_score: float = Field(0.5, ge=0, le=1, description="topic: minimum label probability")
    overall: bool = Field(False, description="also track every item under the topic '*'")

    @model_validator(mode="after")
    def _run_given(self) -> TopicsConfig:
        if self.source != "entity" and not self.run:
            raise ValueError(f"topics.source '{self.source}' needs topics.run (a run folder)")
        return self


class RuleConfig(_Strict):
    """One detection rule, evaluated per topic on a fixed event-time grid."""

    name: str = Field(..., description="shown in alerts, e.g. 'neg-share-1h'")
    metric: Literal["negative_share", "volume", "negative_volume"] = "negative_share"
    window_s: float = Field(3600, gt=0, description="the recent window, seconds")
    baseline_s: float = Field(86400, gt=0, description="the trailing baseline just before the window, seconds")
    method: Literal["ratio", "zscore"] = "ratio"
    threshold: float = Field(2.0, gt=0, description="ratio: window/baseline ≥ this; zscore: z ≥ this")
    min_count: int = Field(5, ge=1, description="items in the window below which the rule never fires")
    min_baseline_count: int = Field(20, ge=0, description="items in the baseline below which the rule never "
                                                         "fires (warm-up: no alerts against an empty history)")
    floor: float = Field(0.05, ge=0, description="ratio: the baseline is at least this (no division by ~0)")


class DetectionConfig(_Strict):
    """When rules are evaluated and how alerts open and close."""

    step_s: float = Field(300, gt=0, description="rules are evaluated every step_s seconds of event time")
    cooldown_s: float = Field(3600, ge=0, description="after an alert resolves, no new alert for that topic+rule "
                                                      "opens for this long")
    resolve_after: int = Field(2, ge=1, description="consecutive quiet evaluations that resolve an open alert")
    rules: list[RuleConfig] = Field(default_factory=lambda: [RuleConfig(name="negative-share-1h")])

    @model_validator(mode="after")
    def _unique(self) -> DetectionConfig:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"detection.rules names must be unique (got {names})")
        return self


class WebhookConfig(_Strict):
    """POST each alert event as JSON."""

    url: str
    timeout_s: float = Field(5.0, gt=0)
    retries: int = Field(3, ge=1, description="attempts in all")
    backoff_s: float = Field(1.0, ge=0, description="wait before retry n is backoff_s * 2**(n-1)")
    headers: dict[str, str] = Field(default_factory=dict)


class DeliveryConfig(_Strict):
    log: bool = Field(True, description="one structured JSON log line per alert event")
    webhook: WebhookConfig | None = None


class SourceConfig(_Strict):
    """How file/stdin/feed items map to (time, source, id, text, entity)."""

    time_field: str = "time"
    id_field: str | None = Field("id", description="unique item id; missing → a hash of source+time+text")
    text_field: str = "text"
    entity_field: str | None = "entity"
    source_name: str | None = Field(None, description="the item's source (default: the file name / 'stdin')")


class MonitorConfig(_Strict):
    """Everything `graftkit monitor` needs."""

    sentiment_run: Annotated[str, ConfigPath()] = Field(..., description="classification run folder predicting sentiment")
    negative_labels: list[str] = Field(["negative"], description="labels counted as negative")
    store: str = Field("sqlite:///monitor.db", description="SQLAlchemy URL")
    store_retries: int = Field(5, ge=1, description="tries of a store read/write that finds it locked/unreachable")
    store_backoff_s: float = Field(0.5, ge=0, description="wait before retry n: store_backoff_s * 2**(n-1)")
    batch_size: int = Field(32, ge=1, description="items scored and stored per transaction")
    topics: TopicsConfig = TopicsConfig()
    detection: DetectionConfig = DetectionConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    fields: SourceConfig = SourceConfig()
    plots_dir: Annotated[str | None, ConfigPath()] = Field(None, description="where `monitor report --plots` writes trend PNGs")


def monitor_config_from_dict(tree: dict, source: str = "monitor config", base_dir: Path | None = None) -> MonitorConfig:
    """Validate ``tree``; relative paths resolve against ``base_dir``, the YAML file's folder (the rule of
    :class:`graftkit.config.ConfigPath`)."""
    try:
        cfg = MonitorConfig.model_validate(tree)
    except ValidationError as err:
        raise explain_validation(err, f"{source} (monitor config)") from None
    if base_dir is not None:
        resolve_config_paths(cfg, base_dir)
        cfg.store = resolve_store_url(cfg.store, base_dir)
    return cfg


def load_monitor_config(path: str | Path) -> MonitorConfig:
    """The monitor config in a YAML file."""
    path = Path(path)
    tree = read_yaml_mapping(path, "monitor config")
    return monitor_config_from_dict(tree, str(path), path.parent)
