"""`graftkit serve RUN_DIR --ray`: the same FastAPI app, deployed as a Ray Serve deployment.

Each replica builds the app with :func:`graftkit.serve.app.create_app` when it starts (Ray Serve's
late-bound ingress), so routes, auth, limits, micro-batching and /metrics are exactly those of
``graftkit serve --workers N``; Ray adds replicas across a cluster and autoscaling. As with uvicorn
workers, each replica keeps its own rate limiter and its own /metrics counters (a request to
/metrics reports the replica that answered it); Ray's own ``ray_serve_*`` metrics aggregate across
replicas.

Two ways in:

* ``graftkit serve RUN_DIR --ray --replicas 2`` (or ``--min-replicas 1 --max-replicas 4``) starts a
  local Ray instance (or joins ``--ray-address``) and blocks until Ctrl-C;
* ``serve run configs/serve-ray.yaml`` / ``serve deploy`` with :func:`app_builder` as the import
  path, where Ray's own config file sets ``autoscaling_config`` per deployment.
"""
from __future__ import annotations

import os
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from graftkit.errors import ConfigError
from graftkit.modeling.run_folder import RunFolder
from graftkit.serve.app import create_app
from graftkit.serve.security import load_key_hashes
from graftkit.serve.settings import ServeConfig, load_env_settings, load_settings

DEPLOYMENT = "GraftkitService"
APP_NAME = "graftkit"


class RayServeConfig(BaseSettings):
    """Replica count or autoscaling bounds; environment variables are GRAFTKIT_RAY_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="GRAFTKIT_RAY_", extra="forbid")

    replicas: int = Field(1, ge=1, description="fixed number of replicas (when no autoscaling bounds are set)")
    min_replicas: int | None = Field(None, ge=0, description="autoscaling: fewest replicas")
    max_replicas: int | None = Field(None, ge=1, description="autoscaling: most replicas")
    target_ongoing_requests: float = Field(2.0, gt=0, description="autoscaling: in-flight requests per replica")
    cpus_per_replica: float = Field(1.0, gt=0, description="CPUs Ray reserves for each replica")
    gpus_per_replica: float = Field(0.0, ge=0, description="GPUs Ray reserves for each replica")
    address: str | None = Field(None, description="existing Ray cluster ('auto' or ray://HOST:PORT); default: "
                                                  "start one on this machine")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray instance (default: all)")

    @model_validator(mode="after")
    def _bounds(self) -> "RayServeConfig":
        if (self.min_replicas is None) != (self.max_replicas is None):
            raise ValueError("set both min_replicas and max_replicas for autoscaling, or neither")
        if self.min_replicas is not None and self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})")
        return self

    def deployment_options(self) -> dict[str, Any]:
        """``Deployment.options(...)`` keywords: a fixed count or an autoscaling_config, plus resources."""
        options: dict[str, Any] = {"ray_actor_options": {"num_cpus": self.cpus_per_replica,
                                                         "num_gpus": self.gpus_per_replica}}
        if self.min_replicas is None:
            options["num_replicas"] = self.replicas
        else:
            options["autoscaling_config"] = {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                                             "initial_replicas": max(self.min_replicas, 1),
                                             "target_ongoing_requests": self.target_ongoing_requests}
        return options


def load_ray_settings(**overrides) -> RayServeConfig:
    """Ray settings from GRAFTKIT_RAY_* with ``overrides`` on top; errors name the field."""
    return load_env_settings(RayServeConfig, "Ray Serve settings (--ray options or GRAFTKIT_RAY_* variables)",
                             **overrides)


def replica_settings(settings: ServeConfig, ray_cfg: RayServeConfig) -> ServeConfig:
    """Settings shipped to the replicas: keys resolved here to digests (no key file or plain keys travel),
    inference threads sized to the CPUs each replica reserves."""
    hashes = load_key_hashes(settings.api_keys, settings.api_keys_file, dict(os.environ))
    threads = settings.threads or max(1, int(ray_cfg.cpus_per_replica))
    return settings.model_copy(update={"api_keys": hashes, "api_keys_file": None, "threads": threads})


def _deployment():
    from ray import serve

    @serve.deployment(name=DEPLOYMENT, health_check_period_s=5)
    @serve.ingress()
    class GraftkitService:
        """One replica: the graftkit FastAPI app over one run folder, built inside the replica."""

        def __init__(self, run_dir: str, settings: ServeConfig):
            self.run_dir = run_dir
            self.settings = settings

        def __serve_build_asgi_app__(self):
            return create_app(self.run_dir, self.settings)

    return GraftkitService


def build_app(run_dir: str, settings: ServeConfig, ray_cfg: RayServeConfig, scaling: bool = True):
    """The Ray Serve application (not yet running) for ``run_dir``; with ``scaling=False`` replica
    count and resources are left to Ray's config file."""
    run_dir = str(RunFolder(run_dir).require_model().path.resolve())  # replicas may run elsewhere
    deployment = _deployment()
    if scaling:
        deployment = deployment.options(**ray_cfg.deployment_options())
    return deployment.bind(run_dir, replica_settings(settings, ray_cfg))


def app_builder(args: dict[str, Any]):
    """Application builder for Ray's own CLI and config files (``import_path:
    graftkit.serve.ray_deploy:app_builder``); ``args`` holds ``run_dir`` and any serve settings."""
    args = dict(args)
    if "run_dir" not in args:
        raise ConfigError("Ray Serve args: 'run_dir' (the run folder to serve) is required")
    return build_app(args["run_dir"], load_settings(**args), load_ray_settings(), scaling=False)


def start(run_dir: str, settings: ServeConfig, ray_cfg: RayServeConfig, log_to_driver: bool = True) -> None:
    """Start (or join) Ray, then deploy the app on ``settings.host:settings.port``; returns once every
    replica has started. Replica logs (graftkit's JSON request log) are echoed here when
    ``log_to_driver``. Stop it with :func:`shutdown`."""
    import ray
    from ray import serve

    app = build_app(run_dir, settings, ray_cfg)  # validates run folder and keys before Ray starts
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from a model server
    if not ray.is_initialized():
        ray.init(address=ray_cfg.address, num_cpus=None if ray_cfg.address else ray_cfg.num_cpus,
                 include_dashboard=False, log_to_driver=log_to_driver)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(app, name=APP_NAME, route_prefix="/")


def shutdown() -> None:
    """Remove the deployment and stop Serve and the Ray instance this process started."""
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def serve_forever(run_dir: str, settings: ServeConfig, ray_cfg: RayServeConfig, say=print) -> None:
    """``graftkit serve --ray``: deploy, then block until Ctrl-C / SIGTERM, then shut down."""
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    start(run_dir, settings, ray_cfg)
    scale = (f"{ray_cfg.min_replicas}-{ray_cfg.max_replicas} replicas (autoscaling)"
             if ray_cfg.min_replicas is not None else f"{ray_cfg.replicas} replicas")
    say(f"Ray Serve: {run_dir} on http://{settings.host}:{settings.port} with {scale}; Ctrl-C stops")
    try:
        stop.wait()
    finally:
        shutdown()
