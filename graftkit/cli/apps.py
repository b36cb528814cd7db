"""CLI command groups of the applications: `graftkit monitor`, `graftkit assistant`, `graftkit recommend`.

Each builder takes the CLI's error wrapper (``friendly`` in ``graftkit.cli.main``), so a user error
prints one line instead of a traceback; main registers each group with one line. The library is
imported inside the command bodies so `graftkit --help` stays fast.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable, List, Optional

import typer
from rich.console import Console
from rich.table import Table

err = Console(stderr=True)


def monitor_app(wrap: Callable) -> typer.Typer:
    """The `graftkit monitor` group: run, report, serve."""
    grp = typer.Typer(no_args_is_help=True, help="Watch a news stream: sentiment per topic, alerts on negative surges.")
    grp.command("run")(wrap(monitor_run))
    grp.command("report")(wrap(monitor_report))
    grp.command("serve")(wrap(monitor_serve))
    return grp


def monitor_run(
    config: Path = typer.Argument(..., help="Monitor YAML (see configs/monitor_demo.yaml)."),
    replay: Optional[Path] = typer.Option(None, help="Replay a CSV/TSV/JSONL file with a time column."),
    speed: float = typer.Option(0.0, help="Replay: event time runs this many times faster than real time "
                                "(0 = as fast as possible)."),
    follow: Optional[Path] = typer.Option(None, help="Follow a growing JSONL (or one-record-per-line CSV) file."),
    stdin: bool = typer.Option(False, "--stdin", help="Read JSON lines from standard input."),
    rss: Optional[List[str]] = typer.Option(None, help="An RSS/Atom feed URL or file (repeatable)."),
    poll_s: float = typer.Option(60.0, help="Follow / RSS: seconds between polls."),
    once: bool = typer.Option(False, "--once", help="RSS: poll each feed once and exit."),
    metrics_port: int = typer.Option(0, help="Expose Prometheus metrics on this port while running (0 = off)."),
):
    """Score, store and watch one source; alerts go to the log, the webhook and Prometheus."""
    import logging

    from graftkit.apps.monitor import Monitor, load_monitor_config
    from graftkit.apps.monitor import sources as src
    from graftkit.apps.monitor.pipeline import summary_line
    from graftkit.errors import ConfigError

    chosen = [x for x in (replay, follow, stdin or None, rss or None) if x]
    if len(chosen) != 1:
        raise ConfigError("choose exactly one source: --replay FILE, --follow FILE, --stdin or --rss URL")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    cfg = load_monitor_config(config)
    with Monitor(cfg) as monitor:
        if metrics_port:
            from prometheus_client import start_http_server

            start_http_server(metrics_port, registry=monitor.metrics.registry)
        if replay:
            stats = monitor.run(src.replay(replay, cfg.fields, speed or None), _progress)
        elif follow:
            stats = monitor.run(src.follow(follow, cfg.fields, poll_s), _progress)
        elif stdin:
            stats = monitor.run(src.from_stream(sys.stdin, cfg.fields), _progress)
        else:
            while True:
                for feed in rss:
                    stats = monitor.run(src.rss(feed), _progress)
                if once:
                    break
                time.sleep(poll_s)
    typer.echo(summary_line(stats))


def _progress(result: dict) -> None:
    for ev in result["events"]:
        a = ev["alert"]
        err.print(f"[bold red]alert {ev['event']}[/] {a['topic']} ({a['rule']}): value {a['value']:.3f} "
                  f"vs baseline {a['baseline']:.3f}, score {a['score']:.2f}", highlight=False)


def monitor_report(
    config: Path = typer.Argument(..., help="Monitor YAML."),
    since: Optional[str] = typer.Option(None, help="Only items/alerts since: a duration back from the newest "
                                        "item (24h, 7d) or an ISO-8601 time."),
    plots: Optional[Path] = typer.Option(None, help="Write a trend PNG per topic into this folder."),
    bucket: str = typer.Option("1h", help="Trend bucket: a duration like 15m, 1h, 1d."),
    top: int = typer.Option(20, help="Topics shown (most items first)."),
):
    """A table per topic (items, negative share, alerts), the alerts, and optional trend PNGs."""
    from graftkit.apps.monitor import load_monitor_config
    from graftkit.apps.monitor import report as rep
    from graftkit.apps.monitor.store import METADATA, topic_summary
    from graftkit.apps.store import open_engine

    cfg = load_monitor_config(config)
    engine = open_engine(cfg.store, METADATA, cfg.store_retries, cfg.store_backoff_s)
    start = rep.resolve_since(since, engine)
    topics = topic_summary(engine, start)[:top]
    out = Console()
    table = Table(title=f"topics since {rep.fmt_time(start) or 'the start'}")
    for col in ("topic", "items", "negative", "neg. share", "first", "last", "alerts", "open"):
        table.add_column(col, justify="left" if col in ("topic", "first", "last") else "right")
    for t in topics:
        table.add_row(t["topic"], str(t["items"]), str(t["negative"]), f"{t['negative_share']:.1%}",
                      rep.fmt_time(t["first"]), rep.fmt_time(t["last"]), str(t["alerts"]), str(t["open_alerts"]))
    out.print(table)
    alerts = rep.alert_rows(engine, start)
    at = Table(title="alerts")
    for col in ("id", "topic", "rule", "state", "opened", "resolved", "value", "baseline", "peak score"):
        at.add_column(col)
    for a in alerts:
        at.add_row(str(a["id"]), a["topic"], a["rule"], a["state"], a["opened"], a["resolved"], f"{a['value']:.3f}",
                   f"{a['baseline']:.3f}", f"{a['peak']:.2f}")
    out.print(at)
    if plots:
        step = rep.parse_duration(bucket)
        for t in topics:
            path = rep.trend_png(engine, t["topic"], plots / f"trend_{rep.safe_name(t['topic'])}.png", step, start)
            err.print(f"trend → {path}")


def monitor_serve(
    config: Path = typer.Argument(..., help="Monitor YAML."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
    api_keys_file: Optional[Path] = typer.Option(None, help="API keys for POST /v1/ingest, one per line "
                                                 "(plain or sha256:<hex>); or set GRAFTKIT_API_KEYS."),
    allow_anonymous: bool = typer.Option(False, "--allow-anonymous", help="No API key needed (local use only)."),
):
    """Serve POST /v1/ingest (authenticated), the dashboard at /dashboard, and /metrics."""
    import uvicorn

    from graftkit.apps.monitor import load_monitor_config
    from graftkit.serve.apps import create_monitor_app
    from graftkit.serve.settings import load_settings

    settings = load_settings(host=host, port=port, api_keys_file=api_keys_file, allow_anonymous=allow_anonymous)
    uvicorn.run(create_monitor_app(load_monitor_config(config), settings), host=host, port=port)
