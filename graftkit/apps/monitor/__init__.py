"""`graftkit monitor`: score a stream of news items for sentiment, store them, and alert on negative surges."""
from graftkit.apps.monitor.config import MonitorConfig, load_monitor_config
from graftkit.apps.monitor.pipeline import Monitor

__all__ = ["Monitor", "MonitorConfig", "load_monitor_config"]
