"""Prometheus metrics of one app instance (own registry, so several apps can live in one process)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServiceMetrics:
    """Request counts by path and status, latency histogram, batch sizes, queue depth, model info."""

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("graftkit_requests", "HTTP requests by path and status", ["path", "status"],
                                registry=r)
        self.latency = Histogram("graftkit_request_latency_seconds", "HTTP request latency", ["path"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("graftkit_batch_size", "texts per model call (micro-batching)",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_latency = Histogram("graftkit_batch_latency_seconds", "model call duration",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.queue = Gauge("graftkit_queue_texts", "texts waiting for the model", registry=r)
        self.texts = Counter("graftkit_texts", "texts predicted", registry=r)
        self.model = Info("graftkit_model", "the served model", registry=r)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
