"""Alert delivery: a structured log line, and webhook POSTs from the outbox with retries and backoff.

The webhook runs in a background thread, so a slow or dead endpoint never holds up scoring. Each
alert event has a row in ``monitor_deliveries`` (written with the alert itself); the thread sends
pending rows and records the outcome (sent, or failed with the attempts and the last error).
"""
from __future__ import annotations

import json
import logging
import threading
import time

import httpx
from sqlalchemy import select
from sqlalchemy.engine import Engine
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from graftkit.apps.monitor.config import WebhookConfig
from graftkit.apps.monitor.metrics import MonitorMetrics
from graftkit.apps.monitor.store import alerts, deliveries
from graftkit.apps.store import StoreError, with_retry

log = logging.getLogger("graftkit.monitor")


def log_alert(alert: dict, event: str) -> None:
    """One JSON log line per alert event (machine-readable, e.g. for Loki / CloudWatch filters)."""
    log.warning(json.dumps({"event": f"alert_{event}", **alert_payload(alert)}, sort_keys=True))


def alert_payload(alert: dict) -> dict:
    """The JSON body describing an alert (webhook body, log line, API)."""
    keys = ("id", "topic", "rule", "state", "opened_at", "resolved_at", "value", "baseline", "score", "count", "peak")
    return {k: alert.get(k) for k in keys}


class WebhookSender:
    """Sends pending deliveries in a background thread; ``close()`` finishes what is queued.

    Args:
        engine: the monitor store.
        url: the store URL (for error messages).
        cfg: webhook settings.
        metrics: counters to update.
        sleep: injectable for tests.
    """

    def __init__(self, engine: Engine, url: str, cfg: WebhookConfig, metrics: MonitorMetrics,
                 sleep=time.sleep):
        self.engine, self.url, self.cfg, self.metrics, self.sleep = engine, url, cfg, metrics, sleep
        self.client = httpx.Client(timeout=cfg.timeout_s, headers=cfg.headers)
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="graftkit-webhook", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """New pending rows were committed."""
        self._wake.set()

    def close(self, timeout: float | None = None) -> None:
        """Deliver everything pending (each row through its retries), then stop."""
        self._stop = True
        self.kick()
        self._thread.join(timeout)
        self.client.close()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                while self._send_pending():
                    pass
            except StoreError as e:  # the store is down: keep the rows pending for the next run
                log.error("webhook: %s", e)
            if self._stop:
                return

    def _send_pending(self) -> bool:
        q = (select(deliveries.c.id, deliveries.c.event, alerts)
             .join(alerts, alerts.c.id == deliveries.c.alert_id)
             .where(deliveries.c.status == "pending", deliveries.c.channel == "webhook")
             .order_by(deliveries.c.id).limit(50))

        def fetch():
            with self.engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(q)]

        rows = with_retry(fetch, self.url, what="read pending deliveries")
        for row in rows:
            status, attempts, error = self._post({"event": row["event"], "alert": alert_payload(row)})
            self.metrics.deliveries.labels(status).inc()

            def record(row=row, status=status, attempts=attempts, error=error):
                with self.engine.begin() as conn:
                    conn.execute(deliveries.update().where(deliveries.c.id == row["id"]).values(
                        status=status, attempts=attempts, error=error, updated_at=time.time()))

            with_retry(record, self.url, what="record a delivery")
        return bool(rows)

    def _post(self, body: dict) -> tuple[str, int, str | None]:
        """POST ``body`` with ``cfg.retries`` tries and exponential backoff: (status, attempts, last error)."""
        where = redact_url(self.cfg.url)  # Slack / Teams / Discord put the secret in the URL's path
        retries = self.cfg.retries

        def warn(state: RetryCallState) -> None:
            log.warning("webhook %s: attempt %d/%d failed (%s)", where, state.attempt_number, retries,
                        state.outcome.exception())

        retrying = Retrying(stop=stop_after_attempt(retries), wait=wait_exponential(multiplier=self.cfg.backoff_s),
                            retry=retry_if_exception_type(_PostFailed), sleep=self.sleep, before_sleep=warn,
                            reraise=True)
        try:
            attempts = 0
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    self._post_once(body)
            return "sent", attempts, None
        except _PostFailed as e:
            log.error("webhook %s: attempt %d/%d failed (%s); giving up, recorded in monitor_deliveries",
                      where, retries, retries, e)
            return "failed", retries, str(e)

    def _post_once(self, body: dict) -> None:
        try:
            resp = self.client.post(self.cfg.url, json=body)
        except httpx.HTTPError as e:
            raise _PostFailed(f"{type(e).__name__}: {redact_text(str(e), self.cfg.url)}") from None
        if resp.status_code >= 300:
            raise _PostFailed(f"HTTP {resp.status_code}: {resp.text[:200]}")


class _PostFailed(Exception):
    """One webhook POST that did not get a 2xx answer (the message is what gets logged and recorded)."""


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what a log may show of a webhook whose path or query is the secret."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


def redact_text(text: str, url: str) -> str:
    """``text`` with every occurrence of ``url`` replaced by its redacted form (httpx errors may quote it)."""
    return text.replace(url, redact_url(url))
