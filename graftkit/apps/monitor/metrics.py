"""Prometheus metrics of a monitor (its own registry, so a test process can hold several monitors)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class MonitorMetrics:
    """Items ingested / duplicate / off topic / skipped, alerts, open alerts and the last rule values per topic."""

    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.ingested = Counter("graftkit_monitor_items_ingested", "items scored and stored", registry=r)
        self.duplicates = Counter("graftkit_monitor_items_duplicate", "items already stored (not re-counted)",
                                  registry=r)
        self.off_topic = Counter("graftkit_monitor_items_off_topic", "items the topic run's out-of-scope detector "
                                 "found to fit none of its topics (stored without a topic)", registry=r)
        self.skipped = Counter("graftkit_monitor_items_skipped", "malformed items skipped", ["reason"], registry=r)
        self.alerts = Counter("graftkit_monitor_alerts", "alert events", ["topic", "rule", "event"], registry=r)
        self.open_alerts = Gauge("graftkit_monitor_open_alerts", "alerts open now", ["topic", "rule"], registry=r)
        self.rule_value = Gauge("graftkit_monitor_rule_value", "last window value of a rule", ["topic", "rule"],
                                registry=r)
        self.rule_score = Gauge("graftkit_monitor_rule_score", "last ratio / z-score of a rule", ["topic", "rule"],
                                registry=r)
        self.deliveries = Counter("graftkit_monitor_deliveries", "webhook deliveries", ["status"], registry=r)
        self.event_time = Gauge("graftkit_monitor_event_time_seconds", "event time evaluated up to", registry=r)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
