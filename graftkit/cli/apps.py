"""CLI command groups of the applications: `graftkit monitor`, `graftkit assistant`, `graftkit recommend`.

Each builder takes the CLI's error wrapper (``friendly`` in ``graftkit.cli.main``), so a user error
prints one line instead of a traceback; main registers each group with one line. The library is
imported inside the command bodies so `graftkit --help` stays fast.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from graftkit.cli.serve import serve_option

err = Console(stderr=True)


def monitor_app(wrap: Callable) -> typer.Typer:
    """The `graftkit monitor` group: run, report, serve."""
    grp = typer.Typer(no_args_is_help=True, help="Watch a news stream: sentiment per topic, alerts on negative surges.")
    grp.command("run")(wrap(monitor_run))
    grp.command("report")(wrap(monitor_report))
    grp.command("serve")(wrap(monitor_serve))
    return grp


def monitor_run(
    config: Path = typer.Argument(..., help="Monitor YAML (see configs/monitor-demo.yaml)."),
    replay: Path | None = typer.Option(None, help="Replay a CSV/TSV/JSONL file with a time column."),
    speed: float = typer.Option(0.0, help="Replay: event time runs this many times faster than real time "
                                "(0 = as fast as possible)."),
    follow: Path | None = typer.Option(None, help="Follow a growing JSONL (or one-record-per-line CSV) file."),
    stdin: bool = typer.Option(False, "--stdin", help="Read JSON lines from standard input."),
    rss: list[str] | None = typer.Option(None, help="An RSS/Atom feed URL or file (repeatable)."),
    poll_s: float = typer.Option(60.0, help="Follow / RSS: seconds between polls."),
    once: bool = typer.Option(False, "--once", help="RSS: poll each feed once and exit."),
    metrics_port: int = typer.Option(0, help="Expose Prometheus metrics on this port while running (0 = off)."),
):
    """Score, store and watch one source; alerts go to the log, the webhook and Prometheus."""
    from graftkit.apps.monitor import Monitor, load_monitor_config
    from graftkit.apps.monitor import sources as src
    from graftkit.apps.monitor.pipeline import summary_line
    from graftkit.errors import ConfigError

    chosen = [x for x in (replay, follow, stdin or None, rss or None) if x]
    if len(chosen) != 1:
        raise ConfigError("choose exactly one source: --replay FILE, --follow FILE, --stdin or --rss URL")
    _show_monitor_log()
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


def _show_monitor_log() -> None:
    """The monitor's alert and delivery lines on stderr; the root logger is left alone (at INFO it would show
    every library's records, torch's exit statistics among them)."""
    import logging

    log = logging.getLogger("graftkit.monitor")
    if not any(getattr(h, "_graftkit_cli", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._graftkit_cli = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _progress(result: dict) -> None:
    for ev in result["events"]:
        a = ev["alert"]
        err.print(f"[bold red]alert {ev['event']}[/] {a['topic']} ({a['rule']}): value {a['value']:.3f} "
                  f"vs baseline {a['baseline']:.3f}, score {a['score']:.2f}", highlight=False)


def monitor_report(
    config: Path = typer.Argument(..., help="Monitor YAML."),
    since: str | None = typer.Option(None, help="Only items/alerts since: a duration back from the newest "
                                        "item (24h, 7d) or an ISO-8601 time."),
    plots: Path | None = typer.Option(None, help="Write a trend PNG per topic into this folder."),
    bucket: str = typer.Option("1h", help="Trend bucket: a duration like 15m, 1h, 1d."),
    top: int = typer.Option(20, help="Topics shown (most items first)."),
):
    """A table per topic (items, negative share, alerts), the alerts, and optional trend PNGs."""
    from graftkit.apps.monitor import load_monitor_config
    from graftkit.apps.monitor import report as rep
    from graftkit.apps.monitor.store import METADATA, off_topic_summary, topic_summary
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
    off = off_topic_summary(engine, start)
    if off["items"] or cfg.topics.source == "topic":
        out.print(f"off topic (the topic run's detector: fits none of the topics): {off['items']} items, "
                  f"{off['negative']} negative", highlight=False)
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
    host: str | None = serve_option("host"),
    port: int | None = serve_option("port"),
    api_keys_file: Path | None = serve_option("api_keys_file"),
    allow_anonymous: bool | None = serve_option("allow_anonymous"),
    public_metrics: bool | None = serve_option("public_metrics"),
):
    """Serve POST /v1/ingest (authenticated), the dashboard at /dashboard, and /metrics."""
    from graftkit.apps.monitor import load_monitor_config
    from graftkit.serve.apps import create_monitor_app

    _serve(lambda settings: create_monitor_app(load_monitor_config(config), settings), host=host, port=port,
           api_keys_file=api_keys_file, allow_anonymous=allow_anonymous, public_metrics=public_metrics)


def _serve(make_app: Callable, **options) -> None:
    """Run an application's service: the options given on the command line over GRAFTKIT_SERVE_* (None: not
    given, so the environment or the default applies)."""
    import uvicorn

    from graftkit.serve.settings import load_settings

    settings = load_settings(**options)
    uvicorn.run(make_app(settings), host=settings.host, port=settings.port)


def assistant_app(wrap: Callable) -> typer.Typer:
    """The `graftkit assistant` group: chat, calibrate, serve."""
    grp = typer.Typer(no_args_is_help=True, help="Customer-service assistant: intent + FAQ + out-of-scope handoff.")
    grp.command("chat")(wrap(assistant_chat))
    grp.command("calibrate")(wrap(assistant_calibrate))
    grp.command("serve")(wrap(assistant_serve))
    return grp


def assistant_chat(
    config: Path = typer.Argument(..., help="Assistant YAML (see configs/assistant.yaml)."),
    messages: list[str] = typer.Argument(..., help="Messages, answered in order in one conversation."),
    session: str | None = typer.Option(None, help="Continue this conversation id."),
):
    """Answer messages in one conversation (JSON lines: reply, intent, handoff and its reason)."""
    import json

    from graftkit.apps.assistant import Assistant, load_assistant_config

    bot = Assistant.from_config(load_assistant_config(config))
    try:
        for m in messages:
            out = bot.reply(m, session)
            session = out["session_id"]
            sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    finally:
        bot.close()


def assistant_calibrate(
    config: Path = typer.Argument(..., help="Assistant YAML."),
    validation: Path = typer.Option(..., help="Validation file with in-scope and out-of-scope questions "
                                    "(a label that is not an intent of the run counts as out of scope)."),
    test: Path | None = typer.Option(None, help="Also report this file before and at the chosen thresholds."),
    text_column: str = typer.Option("text"),
    label_column: str = typer.Option("label"),
    target_accuracy: float = typer.Option(0.9, min=0.0, max=1.0, help="In-scope accuracy to keep."),
    no_similarity: bool = typer.Option(False, "--no-similarity", help="Tune the scope threshold only (the "
                                       "detector's score, or the confidence for a run without a detector)."),
    out: Path | None = typer.Option(None, help="Write a copy of the config with the chosen thresholds here."),
):
    """Pick the out-of-scope thresholds for a target in-scope accuracy: the detector's score threshold (or the
    intent confidence for a run without a detector) and whether an FAQ-similarity threshold helps; report OOS
    recall/precision, in-scope accuracy and handoff rate before and after."""
    import json

    import yaml

    from graftkit.apps.assistant import Assistant, load_assistant_config
    from graftkit.apps.assistant.calibrate import calibrate, evaluate, read_labelled
    from graftkit.io import write_text

    cfg = load_assistant_config(config)
    bot = Assistant.from_config(cfg)
    try:
        result = calibrate(bot, *read_labelled(validation, text_column, label_column), target_accuracy,
                           not no_similarity)
        if test:
            test_rows = read_labelled(test, text_column, label_column)
            before = evaluate(bot, *test_rows)
            cfg.thresholds = cfg.thresholds.model_validate(result["thresholds"])
            result["test"] = {**evaluate(bot, *test_rows), "before": before}
    finally:
        bot.close()
    if not result["target_reached"]:
        err.print(f"[yellow]no thresholds reach in-scope accuracy {target_accuracy}; chose the most accurate[/]")
    for name, m in (("before", result["before"]), ("after", result)):
        err.print(f"validation {name}: in-scope accuracy {m['in_scope_accuracy']}, OOS recall {m['oos_recall']}, "
                  f"OOS precision {m['oos_precision']}, handoff rate {m['handoff_rate']}", highlight=False)
    if out:
        tree = yaml.safe_load(config.read_text(encoding="utf-8"))
        tree["thresholds"] = result["thresholds"]
        write_text(out, yaml.safe_dump(tree, sort_keys=False))
        err.print(f"config with the chosen thresholds → {out}")
    typer.echo(json.dumps(result, indent=2))


def assistant_serve(
    config: Path = typer.Argument(..., help="Assistant YAML."),
    host: str | None = serve_option("host"),
    port: int | None = serve_option("port"),
    api_keys_file: Path | None = serve_option("api_keys_file"),
    allow_anonymous: bool | None = serve_option("allow_anonymous"),
    public_metrics: bool | None = serve_option("public_metrics"),
):
    """Serve POST /v1/chat and the chat page at /chat."""
    from graftkit.apps.assistant import load_assistant_config
    from graftkit.serve.apps import create_assistant_app

    _serve(lambda settings: create_assistant_app(load_assistant_config(config), settings), host=host, port=port,
           api_keys_file=api_keys_file, allow_anonymous=allow_anonymous, public_metrics=public_metrics)


def recommend_cmd(
    run_dir: Path = typer.Argument(..., help="A ranking run (task.type: ranking) or an embedding run."),
    candidates: Path = typer.Option(..., "--candidates", "-c", help="Items file (.csv/.jsonl) with id and text."),
    history: list[str] | None = typer.Option(None, "--history", help="An item the user read/bought (repeatable, "
                                                "oldest first)."),
    history_file: Path | None = typer.Option(None, help="A text file: one history item per line, oldest first."),
    k: int = typer.Option(10, "-k", "--top-k", help="Items returned."),
    weights: str | None = typer.Option(None, help="Blend, e.g. model=1,popularity=0.3,recency=0.2: min-max "
                                          "scaled model score and numeric candidate columns (see README)."),
    id_column: str = typer.Option("id"),
    text_column: str = typer.Option("text"),
):
    """Rank candidate items for a user's history (JSON lines, best first)."""
    import json

    from graftkit.apps.recommend.ranker import (
        Recommender,
        blend,
        parse_weights,
        read_candidates,
    )

    hist = list(history or [])
    if history_file:
        hist += [line.strip() for line in history_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    w = parse_weights(weights)
    rows, feats = read_candidates(candidates, id_column, text_column, [n for n in w if n != "model"])
    rec = Recommender(run_dir)
    interest = rec.scores(hist, [r["text"] for r in rows])
    final = blend(interest, feats, w)
    for rank, i in enumerate(sorted(range(len(rows)), key=lambda j: -final[j])[:k], 1):
        sys.stdout.write(json.dumps({"rank": rank, "id": rows[i]["id"], "text": rows[i]["text"],
                                     "score": round(float(final[i]), 6), "interest": round(float(interest[i]), 6),
                                     **{f: float(feats[f][i]) for f in feats}}, ensure_ascii=False) + "\n")
