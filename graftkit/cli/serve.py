"""`graftkit serve`: run the HTTP service with uvicorn (one app per worker process, built by a factory)."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional

import typer

from graftkit.errors import ConfigError
from graftkit.serve.security import hash_key
from graftkit.serve.settings import ServeConfig, load_settings


def serve_option(name: str, *flags: str):
    """A typer option for the :class:`ServeConfig` field ``name``, with the field's description as its help.

    It is None unless given on the command line, so that GRAFTKIT_SERVE_<NAME> (else the field's default)
    applies otherwise: pass it to ``load_settings``, which drops the Nones. A bool field becomes an on-switch.
    ``flags`` rename the option (default ``--field-name``).
    """
    field = ServeConfig.model_fields[name]
    default = field.get_default(call_default_factory=True)
    text = field.description or name.replace("_", " ")
    env = f"GRAFTKIT_SERVE_{name.upper()}"
    where = f"Env {env}=true." if isinstance(default, bool) else \
        f"Env {env}." if default is None else f"Default {default}; env {env}."
    return typer.Option(None, *(flags or (f"--{name.replace('_', '-')}",)), show_default=False,
                        help=f"{text[:1].upper()}{text[1:]}. {where}")


def serve_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run folder (exported first for --backend onnx)."),
    backend: Optional[str] = serve_option("backend"),
    precision: Optional[str] = serve_option("precision"),
    host: Optional[str] = serve_option("host"),
    port: Optional[int] = serve_option("port"),
    workers: Optional[int] = serve_option("workers"),
    threads: Optional[int] = serve_option("threads"),
    api_keys_file: Optional[Path] = serve_option("api_keys_file"),
    allow_anonymous: Optional[bool] = serve_option("allow_anonymous"),
    admin_keys_file: Optional[Path] = serve_option("admin_api_keys_file", "--admin-keys-file"),
    public_metrics: Optional[bool] = serve_option("public_metrics"),
    rate_limit_storage: Optional[str] = serve_option("rate_limit_storage"),
    ssl_certfile: Optional[Path] = serve_option("ssl_certfile"),
    ssl_keyfile: Optional[Path] = serve_option("ssl_keyfile"),
    max_batch_size: Optional[int] = serve_option("max_batch_size"),
    max_wait_ms: Optional[float] = serve_option("max_wait_ms"),
    max_queue: Optional[int] = serve_option("max_queue"),
    generate_wait_ms: Optional[float] = serve_option("generate_wait_ms"),
    generate_max_queue: Optional[int] = serve_option("generate_max_queue"),
    generate_batching: Optional[str] = serve_option("generate_batching"),
    request_timeout_s: Optional[float] = serve_option("request_timeout_s"),
    model_timeout_s: Optional[float] = serve_option("model_timeout_s"),
    mask_pii_input: Optional[bool] = serve_option("mask_pii_input"),
    log_level: Optional[str] = serve_option("log_level"),
    ray: bool = typer.Option(False, "--ray", help="Deploy on Ray Serve instead of uvicorn workers "
                             "(needs the 'ray' extra of graftkit); more settings: GRAFTKIT_RAY_<NAME>."),
    replicas: Optional[int] = typer.Option(None, min=1, help="--ray: fixed number of replicas."),
    min_replicas: Optional[int] = typer.Option(None, min=0, help="--ray: autoscaling lower bound."),
    max_replicas: Optional[int] = typer.Option(None, min=1, help="--ray: autoscaling upper bound."),
    ray_address: Optional[str] = typer.Option(None, help="--ray: join this cluster ('auto', ray://HOST:PORT) "
                                              "instead of starting Ray here."),
):
    """Serve RUN_DIR over HTTP(S): POST /v1/predict, playground at /, docs at /docs, metrics at /metrics.

    Every setting is also a GRAFTKIT_SERVE_<NAME> environment variable (the options above, rate limits,
    request limits); an option given here overrides its variable.
    SIGHUP (or POST /v1/admin/reload) swaps in a new model without dropping requests.
    """
    import uvicorn

    from graftkit.modeling.run_folder import RunFolder

    RunFolder(run_dir).require_model()
    settings = load_settings(run_dir=str(run_dir), backend=backend, precision=precision, host=host, port=port,
                             workers=workers, threads=threads, api_keys_file=api_keys_file,
                             allow_anonymous=allow_anonymous, admin_api_keys_file=admin_keys_file,
                             public_metrics=public_metrics, rate_limit_storage=rate_limit_storage,
                             ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, max_batch_size=max_batch_size,
                             max_wait_ms=max_wait_ms, max_queue=max_queue, generate_wait_ms=generate_wait_ms,
                             generate_max_queue=generate_max_queue, generate_batching=generate_batching,
                             request_timeout_s=request_timeout_s,
                             model_timeout_s=model_timeout_s, mask_pii_input=mask_pii_input, log_level=log_level)
    if settings.threads == 0 and not ray:  # --ray sizes threads to the CPUs each replica reserves
        settings.threads = max(1, (os.cpu_count() or 1) // settings.workers)
    certfile, keyfile = settings.ssl_certfile, settings.ssl_keyfile
    if (certfile is None) != (keyfile is None):
        raise ConfigError("HTTPS needs both --ssl-certfile and --ssl-keyfile (or GRAFTKIT_SERVE_SSL_CERTFILE "
                          "and GRAFTKIT_SERVE_SSL_KEYFILE)")
    from graftkit.serve.app import create_app

    app = create_app(run_dir, settings)  # fail fast (keys, run folder) before forking workers
    if ray:
        from graftkit.serve.ray_deploy import load_ray_settings, serve_forever

        ray_cfg = load_ray_settings(replicas=replicas, min_replicas=min_replicas, max_replicas=max_replicas,
                                    address=ray_address)
        return serve_forever(str(run_dir), settings, ray_cfg)
    options = dict(host=settings.host, port=settings.port, log_level=settings.log_level,
                   access_log=False,  # graftkit's JSON request log (PII-masked) replaces uvicorn's
                   ssl_certfile=certfile and str(certfile), ssl_keyfile=keyfile and str(keyfile),
                   timeout_graceful_shutdown=int(settings.graceful_timeout_s),
                   # uvicorn's 5 s default is shorter than loading a model under load: a SIGHUP would keep the
                   # old workers ("not ready in time") and a crashed worker's replacement would be killed
                   timeout_worker_healthcheck=math.ceil(settings.worker_ready_timeout_s))
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
