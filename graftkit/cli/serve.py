"""`graftkit serve`: run the HTTP service with uvicorn (one app per worker process, built by a factory)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from graftkit.errors import ConfigError
from graftkit.serve.security import hash_key
from graftkit.serve.settings import ServeConfig, load_settings


def serve_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run folder (exported first for --backend onnx)."),
    backend: str = typer.Option("torch", help="torch, or onnx (after `graftkit export`)."),
    precision: str = typer.Option("fp32", help="ONNX graph: fp32 or int8 (needs `export --quantize int8`)."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, help="Worker processes (each loads the model once)."),
    threads: int = typer.Option(0, help="Inference threads per worker (0 = cores / workers)."),
    api_keys_file: Optional[Path] = typer.Option(None, help="API keys, one per line (plain or sha256:<hex>); "
                                                 "or set GRAFTKIT_API_KEYS."),
    allow_anonymous: bool = typer.Option(False, "--allow-anonymous", help="No API key needed (local use only)."),
    admin_keys_file: Optional[Path] = typer.Option(None, help="Keys for POST /v1/admin/reload (model swap)."),
    public_metrics: bool = typer.Option(False, "--public-metrics", help="Serve /metrics without a key "
                                        "(for a scraper on a private network)."),
    rate_limit_storage: Optional[str] = typer.Option(None, help="Rate-limit storage: memory:// (default, one "
                                                     "process) or redis://HOST:PORT (shared by workers/replicas)."),
    ssl_certfile: Optional[Path] = typer.Option(None, help="TLS certificate (PEM): serve HTTPS."),
    ssl_keyfile: Optional[Path] = typer.Option(None, help="TLS private key (PEM) for --ssl-certfile."),
    max_batch_size: int = typer.Option(32, help="Most texts per model call (micro-batching)."),
    max_wait_ms: float = typer.Option(0.0, help="How long the first text of a batch waits for company, in "
                                      "milliseconds (0: an idle model starts at once)."),
    max_queue: int = typer.Option(256, help="Texts waiting for the model before requests get 503."),
    generate_wait_ms: float = typer.Option(30.0, help="Generation runs: how long the first request of a batch "
                                           "waits for company, in milliseconds."),
    request_timeout_s: float = typer.Option(30.0, help="Deadline of one request in seconds (then 504)."),
    mask_pii_input: bool = typer.Option(False, "--mask-pii-input", help="Mask personal data before the model."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
    ray: bool = typer.Option(False, "--ray", help="Deploy on Ray Serve instead of uvicorn workers "
                             "(needs the 'ray' extra of graftkit); more settings: GRAFTKIT_RAY_<NAME>."),
    replicas: Optional[int] = typer.Option(None, min=1, help="--ray: fixed number of replicas."),
    min_replicas: Optional[int] = typer.Option(None, min=0, help="--ray: autoscaling lower bound."),
    max_replicas: Optional[int] = typer.Option(None, min=1, help="--ray: autoscaling upper bound."),
    ray_address: Optional[str] = typer.Option(None, help="--ray: join this cluster ('auto', ray://HOST:PORT) "
                                              "instead of starting Ray here."),
):
    """Serve RUN_DIR over HTTP(S): POST /v1/predict, playground at /, docs at /docs, metrics at /metrics.

    Other settings (rate limits, request limits) come from GRAFTKIT_SERVE_<NAME> environment variables.
    SIGHUP (or POST /v1/admin/reload) swaps in a new model without dropping requests.
    """
    import uvicorn

    from graftkit.modeling.run_folder import RunFolder

    RunFolder(run_dir).require_model()
    if threads == 0 and not ray:  # --ray sizes threads to the CPUs each replica reserves
        threads = max(1, (os.cpu_count() or 1) // workers)
    settings = load_settings(run_dir=str(run_dir), backend=backend, precision=precision, host=host, port=port,
                             workers=workers, threads=threads, api_keys_file=api_keys_file,
                             allow_anonymous=allow_anonymous or None, admin_api_keys_file=admin_keys_file,
                             public_metrics=public_metrics or None, rate_limit_storage=rate_limit_storage,
                             ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, max_batch_size=max_batch_size,
                             max_wait_ms=max_wait_ms, max_queue=max_queue, request_timeout_s=request_timeout_s,
                             generate_wait_ms=generate_wait_ms,
                             mask_pii_input=mask_pii_input or None, log_level=log_level)
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise ConfigError("HTTPS needs both --ssl-certfile and --ssl-keyfile")
    from graftkit.serve.app import create_app

    app = create_app(run_dir, settings)  # fail fast (keys, run folder) before forking workers
    if ray:
        from graftkit.serve.ray_deploy import load_ray_settings, serve_forever

        ray_cfg = load_ray_settings(replicas=replicas, min_replicas=min_replicas, max_replicas=max_replicas,
                                    address=ray_address)
        return serve_forever(str(run_dir), settings, ray_cfg)
    options = dict(host=settings.host, port=settings.port, log_level=settings.log_level,
                   access_log=False,  # graftkit's JSON request log (PII-masked) replaces uvicorn's
                   ssl_certfile=ssl_certfile and str(ssl_certfile), ssl_keyfile=ssl_keyfile and str(ssl_keyfile),
                   timeout_graceful_shutdown=int(settings.graceful_timeout_s))
    if settings.workers == 1:
        return uvicorn.run(app, **options)
    saved = export_to_env(settings)
    try:
        uvicorn.run("graftkit.serve.app:app_from_env", factory=True, workers=settings.workers, **options)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def export_to_env(settings: ServeConfig) -> dict[str, str]:
    """Hand the resolved settings to worker processes as GRAFTKIT_SERVE_* variables; the environment before."""
    saved = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        key = f"GRAFTKIT_SERVE_{name.upper()}"
        if name == "api_keys":  # workers get digests, never plain keys
            value = [k if k.startswith("sha256:") else hash_key(k) for k in value]
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return saved
