"""Service settings: one pydantic model, read from the environment (GRAFTKIT_SERVE_*) or the CLI at startup."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from graftkit.errors import ConfigError


class ServeConfig(BaseSettings):
    """Everything `graftkit serve` can tune. Environment variables are GRAFTKIT_SERVE_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="GRAFTKIT_SERVE_", extra="forbid", validate_assignment=True)

    run_dir: str | None = Field(None, description="run folder to serve (the CLI argument sets it)")
    backend: Literal["torch", "onnx"] = Field("torch", description="the back-end: torch, or onnx (after "
                                              "`graftkit export`)")
    precision: Literal["fp32", "int8"] = Field("fp32", description="ONNX graph to load with the onnx backend: "
                                               "fp32, or int8 (needs `graftkit export --quantize int8`)")
    threads: int = Field(0, ge=0, description="inference threads per process (0: cores / workers under "
                         "`graftkit serve`, the library's default under create_app)")
    host: str = Field("127.0.0.1", description="interface to bind")
    port: int = Field(8000, ge=1, le=65535, description="TCP port")
    workers: int = Field(1, ge=1, description="uvicorn worker processes, each with its own model")
    ssl_certfile: Path | None = Field(None, description="TLS certificate (PEM): serve HTTPS")
    ssl_keyfile: Path | None = Field(None, description="TLS private key (PEM) of ssl_certfile")
    # micro-batching and overload
    max_batch_size: int = Field(32, ge=1, description="most texts run through the model at once")
    max_wait_ms: float = Field(0.0, ge=0, description="how long the first text of a batch waits for company "
                               "(0: an idle model starts at once; texts arriving meanwhile form the next batch)")
    max_queue: int = Field(256, ge=1, description="texts waiting for the model; beyond it requests get 503")
    generate_wait_ms: float = Field(30.0, ge=0, description="how long the first /v1/generate request of a batch "
                                    "waits for company (a generation runs for hundreds of ms, so a short wait "
                                    "costs little time to first token and keeps clients that arrive together "
                                    "in one batch instead of alternating between a small and a large one)")
    generate_max_queue: int = Field(64, ge=1, description="/v1/generate requests waiting for the model; beyond "
                                    "it requests get 503")
    generate_batching: Literal["continuous", "static"] = Field(
        "continuous", description="/v1/generate scheduling: 'static' (a batch runs until all its rows finish) or "
        "'continuous' (requests join and leave the running batch between decoding steps; requests with "
        "settings it cannot apply, and seq2seq runs, stay static)")
    request_timeout_s: float = Field(30.0, gt=0, description="deadline of one request; past it 504, work dropped")
    model_timeout_s: float = Field(30.0, gt=0, description="longest one model call may take; past it its requests "
                                   "get 504 and /readyz answers 503 until the call returns")
    # security
    api_keys: list[str] = Field(default_factory=list, description="plain keys (prefer api_keys_file)")
    api_keys_file: Path | None = Field(None, description="file with one API key per line, plain or "
                                       "'sha256:<hex>' (or set GRAFTKIT_API_KEYS)")
    allow_anonymous: bool = Field(False, description="serve without API keys (local experiments only)")
    admin_api_keys_file: Path | None = Field(None, description="keys allowed to call POST /v1/admin/reload")
    public_metrics: bool = Field(False, description="serve /metrics without a key (scrapers on a private network)")
    rate_limit_per_minute: int = Field(600, ge=1, description="requests per minute per key")
    rate_limit_burst: int = Field(60, ge=1, description="requests per second per key")
    rate_limit_storage: str = Field("memory://", description="limits storage: memory:// (one process) or "
                                    "redis://HOST:PORT (shared by workers and replicas)")
    auth_failures_per_minute: int = Field(10, ge=1, description="failed authentications per client address "
                                          "and minute before that address gets 429")
    # explanations (POST /v1/explain): far more compute per text than a prediction
    explain_per_minute: int = Field(30, ge=1, description="explanations per minute per key")
    explain_max_chars: int = Field(1000, ge=1, description="characters per explained text (pair included)")
    explain_max_steps: int = Field(400, ge=1, le=1000, description="Integrated-Gradients steps per explanation")
    # request limits
    max_texts: int = Field(64, ge=1, description="texts per request")
    max_chars: int = Field(5000, ge=1, description="characters per text")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="request body size")
    # privacy and logs
    mask_pii_input: bool = Field(False, description="mask e-mails, phones, card/account/ID numbers before the model")
    log_inputs: bool = Field(False, description="log request texts (always PII-masked)")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="debug, info, warning "
                                                                    "or error")
    graceful_timeout_s: float = Field(30.0, ge=0, description="how long shutdown waits for in-flight requests")
    worker_ready_timeout_s: float = Field(120.0, gt=0, description="workers > 1: how long a new worker (after "
                                          "SIGHUP or a crash) may take to load its model before the restart is "
                                          "abandoned; also how long a worker may leave a health ping unanswered")


def load_env_settings(cls, what: str, **overrides):
    """``cls`` (a pydantic-settings model) from the environment with ``overrides`` on top; errors name the field."""
    from pydantic import ValidationError

    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        lines = [f"  - {'.'.join(map(str, e['loc'])) or '(settings)'}: {e['msg']}" for e in err.errors()]
        raise ConfigError(f"invalid {what}:\n" + "\n".join(lines)) from None


def load_settings(**overrides) -> ServeConfig:
    """Serve settings from GRAFTKIT_SERVE_* with CLI ``overrides`` on top; errors name the field."""
    return load_env_settings(ServeConfig, "serve settings (CLI options or GRAFTKIT_SERVE_* variables)", **overrides)
