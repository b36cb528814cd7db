"""Stream sources: replay of a CSV/JSONL file, a growing file, stdin, RSS/Atom feeds.

Every source yields ``Item`` objects, or ``Skip`` records for malformed input (missing time,
unparseable JSON, empty text), so the monitor counts and logs them with their line or id and
keeps going instead of stopping the stream.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

import httpx

from graftkit.apps.monitor.config import SourceConfig


@dataclass(frozen=True)
class Item:
    """One news item: event time (epoch seconds, UTC), source, unique id, text, optional entity/ticker."""

    time: float
    source: str
    id: str
    text: str
    entity: str | None = None
    where: str = ""


@dataclass(frozen=True)
class Skip:
    """A malformed input record: where it was (file:line or id) and why it was skipped."""

    source: str
    where: str
    reason: str


class Flush:
    """Yielded by live sources when they have nothing new: the monitor stores its partial batch."""


FLUSH = Flush()


class BadRecord(ValueError):
    """A record that cannot become an Item (the message is the reason)."""


def parse_time(raw) -> float:
    """Epoch seconds from a number, a numeric string or an ISO-8601 string (naive times are UTC)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise BadRecord("missing time")
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    text = str(raw).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRecord(f"unparseable time {text[:40]!r} (use ISO-8601 or epoch seconds)") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def content_id(source: str, when: float, text: str) -> str:
    """The id of an item that has none: a hash of its source, time and text (so a replay finds it again)."""
    return "sha256:" + hashlib.sha256(f"{source}\x1f{when!r}\x1f{text}".encode()).hexdigest()[:32]


def item_from_record(rec: dict, fields: SourceConfig, source: str, where: str) -> Item:
    """Map one record to an Item.

    Raises:
        BadRecord: missing/unparseable time or empty text.
    """
    if not isinstance(rec, dict):
        raise BadRecord(f"expected an object, got {type(rec).__name__}")
    text = rec.get(fields.text_field)
    if text is None or not str(text).strip():
        raise BadRecord(f"empty text (field '{fields.text_field}')")
    when = parse_time(rec.get(fields.time_field))
    text = str(text).strip()
    src = str(rec.get("source") or fields.source_name or source)
    rid = rec.get(fields.id_field) if fields.id_field else None
    rid = str(rid).strip() if rid not in (None, "") else content_id(src, when, text)
    entity = rec.get(fields.entity_field) if fields.entity_field else None
    entity = str(entity).strip() or None if entity not in (None, "") else None
    return Item(when, src, rid, text, entity, where)


def _emit(rec_or_err, fields: SourceConfig, source: str, where: str) -> Item | Skip:
    if isinstance(rec_or_err, BadRecord):
        return Skip(source, where, str(rec_or_err))
    try:
        return item_from_record(rec_or_err, fields, source, where)
    except BadRecord as e:
        return Skip(source, where, str(e))


def _json_line(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        return BadRecord(f"unparseable JSON ({e.msg}, column {e.colno})")


def _records(path: Path) -> Iterator[tuple[int, object]]:
    """(line, record or BadRecord) of a CSV/TSV or JSONL file, in file order."""
    with open(path, encoding="utf-8", newline="") as fh:
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            for n, line in enumerate(fh, 1):
                if line.strip():
                    yield n, _json_line(line)
            return
        reader = csv.DictReader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        start = 2
        for rec in reader:
            yield start, rec
            start = reader.line_num + 1


def replay(path: str | Path, fields: SourceConfig, speed: float | None = None,
           sleep: Callable[[float], None] = time.sleep) -> Iterator[Item | Skip]:
    """Items of a CSV/TSV/JSONL file in file order.

    Args:
        speed: None/0 = as fast as possible; otherwise event time runs ``speed`` times faster than
            real time (speed 60: one hour of news in one minute).
    """
    path = Path(path)
    source = fields.source_name or path.name
    t0_event = t0_wall = None
    for line, rec in _records(path):
        out = _emit(rec, fields, source, f"{path.name}:{line}")
        if speed and isinstance(out, Item):
            if t0_event is None:
                t0_event, t0_wall = out.time, time.monotonic()
            wait = (out.time - t0_event) / speed - (time.monotonic() - t0_wall)
            if wait > 0:
                sleep(wait)
        yield out


def follow(path: str | Path, fields: SourceConfig, poll_s: float = 1.0,
           stop: Callable[[], bool] = lambda: False) -> Iterator[Item | Skip | Flush]:
    """Items of a growing JSONL (or one-record-per-line CSV) file, from its start, as lines are appended.

    A partly written last line is held back until its newline arrives. At the end of the file it
    yields ``FLUSH`` (the monitor stores its partial batch), then polls every ``poll_s``; ``stop``
    ends the loop.
    """
    path = Path(path)
    source = fields.source_name or path.name
    is_csv = path.suffix.lower() in (".csv", ".tsv")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","  # the header and every row alike
    header: list[str] | None = None
    line_no, pending = 0, ""
    while not path.exists():
        if stop():
            return
        time.sleep(poll_s)
    with open(path, encoding="utf-8", newline="") as fh:
        while True:
            chunk = fh.readline()
            if chunk:
                pending += chunk
                if not pending.endswith("\n"):
                    continue
                line, pending = pending, ""
                line_no += 1
                if not line.strip():
                    continue
                if is_csv and header is None:
                    header = next(csv.reader(io.StringIO(line), delimiter=delimiter))
                    continue
                rec = (dict(zip(header, next(csv.reader(io.StringIO(line), delimiter=delimiter)))) if is_csv
                       else _json_line(line))
                yield _emit(rec, fields, source, f"{path.name}:{line_no}")
                continue
            yield FLUSH
            if stop():
                return
            time.sleep(poll_s)


def from_stream(stream: IO[str], fields: SourceConfig, name: str = "stdin") -> Iterator[Item | Skip]:
    """Items of JSON lines read from a text stream (stdin)."""
    for n, line in enumerate(stream, 1):
        if line.strip():
            yield _emit(_json_line(line), fields, fields.source_name or name, f"{name}:{n}")


def from_records(records: Iterable[dict], fields: SourceConfig, source: str) -> Iterator[Item | Skip]:
    """Items of already-parsed records (POST /v1/ingest); ``where`` is the record's position or id."""
    for n, rec in enumerate(records):
        yield _emit(rec, fields, source, f"{source}[{n}]")


# A feed that does not answer within this many seconds is skipped for this run (one Skip names it); the
# monitor's other sources go on. The CLI has no option for it: a feed slower than this is treated as down.
RSS_TIMEOUT_S = 20.0


def rss(url_or_path: str, source: str | None = None, timeout_s: float = RSS_TIMEOUT_S) -> Iterator[Item | Skip]:
    """Entries of an RSS/Atom feed (a URL, or a local file for tests) through feedparser.

    A URL is fetched here with ``timeout_s`` (feedparser's own fetch has no timeout, so a silent server
    would hang the monitor). Text is the title plus the summary; the id is the entry id (or link); time
    is ``published`` (or ``updated``). Entries without a date or text are skipped.
    """
    import feedparser  # optional at import: only feeds need it

    try:
        feed = feedparser.parse(_fetch_feed(url_or_path, timeout_s))
    except httpx.HTTPError as e:
        yield Skip(source or url_or_path, url_or_path, f"unreadable feed ({type(e).__name__}: {e}; "
                   f"timeout {timeout_s:g}s)")
        return
    if feed.get("bozo") and not feed.entries:
        yield Skip(source or url_or_path, url_or_path, f"unreadable feed ({feed.get('bozo_exception')})")
        return
    name = source or feed.feed.get("title") or str(url_or_path)
    for n, entry in enumerate(feed.entries, 1):
        where = entry.get("id") or entry.get("link") or f"{url_or_path}#entry{n}"
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        text = " ".join(t for t in (entry.get("title", ""), _strip_html(entry.get("summary", ""))) if t).strip()
        if stamp is None:
            yield Skip(name, where, "missing time (no published/updated date)")
        elif not text:
            yield Skip(name, where, "empty text (no title or summary)")
        else:
            when = datetime(*stamp[:6], tzinfo=timezone.utc).timestamp()
            yield Item(when, name, str(where), text, None, where)


def _fetch_feed(url_or_path: str, timeout_s: float) -> str | bytes:
    """The feed's bytes for an http(s) URL (bounded by ``timeout_s``); anything else goes to feedparser as is."""
    if not str(url_or_path).lower().startswith(("http://", "https://")):
        return url_or_path
    resp = httpx.get(url_or_path, timeout=timeout_s, follow_redirects=True)
    resp.raise_for_status()
    return resp.content


def _strip_html(s: str) -> str:
    return re.sub(r"<[^>]+>", " ", s).replace("  ", " ").strip()
