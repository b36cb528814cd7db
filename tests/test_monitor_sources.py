"""Monitor sources: replay (CSV/JSONL, speed-up), follow, stdin, RSS/Atom; malformed records become counted skips."""
from __future__ import annotations

import io
import json
import threading
import time

import pytest

from graftkit.apps.monitor.config import SourceConfig
from graftkit.apps.monitor.sources import (
    FLUSH,
    Item,
    Skip,
    content_id,
    follow,
    from_stream,
    parse_time,
    replay,
    rss,
)

FIELDS = SourceConfig()


def test_jsonl_replay_skips_malformed_lines_with_their_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join([
        json.dumps({"id": "a", "time": "2024-01-01T00:00:00Z", "text": "Profit fell", "entity": "ACME"}),
        "{not json",
        json.dumps({"id": "b", "text": "no time here"}),
        json.dumps({"id": "c", "time": 1704067300, "text": "  "}),
        "",
        json.dumps({"time": "2024-01-01T00:05:00", "text": "Sales rose"}),
        json.dumps({"id": "d", "time": "yesterday", "text": "x"}),
    ]) + "\n")
    out = list(replay(path, FIELDS))
    items = [x for x in out if isinstance(x, Item)]
    skips = {x.where: x.reason for x in out if isinstance(x, Skip)}
    assert [i.id for i in items][0] == "a" and items[0].entity == "ACME" and items[0].time == 1704067200.0
    assert items[1].id == content_id("s.jsonl", 1704067500.0, "Sales rose")  # naive time = UTC; no id → hash
    assert skips["s.jsonl:2"].startswith("unparseable JSON")
    assert skips["s.jsonl:3"] == "missing time"
    assert skips["s.jsonl:4"].startswith("empty text")
    assert skips["s.jsonl:7"].startswith("unparseable time")


def test_csv_replay_line_numbers_follow_multiline_fields(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text('id,time,text,entity\n1,2024-01-01T00:00:00Z,"two\nlines",ACME\n2,,missing,BOLT\n')
    out = list(replay(path, FIELDS))
    assert isinstance(out[0], Item) and out[0].text == "two\nlines"
    assert out[1] == Skip("s.csv", "s.csv:4", "missing time")


def test_replay_speed_sleeps_scaled_event_gaps(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "time": 3600 * i, "text": "t"}) + "\n" for i in range(3)))
    waits: list[float] = []
    list(replay(path, FIELDS, speed=3600, sleep=waits.append))
    assert len(waits) == 2 and waits[0] == pytest.approx(1.0, abs=0.05) and waits[1] == pytest.approx(2.0, abs=0.1)


def test_follow_reads_appended_lines_and_holds_back_a_partial_one(tmp_path):
    path = tmp_path / "live.jsonl"
    path.write_text(json.dumps({"id": "1", "time": 1, "text": "first"}) + "\n")
    done = threading.Event()
    seen: list = []

    def writer():
        time.sleep(0.3)
        with open(path, "a") as fh:
            fh.write('{"id": "2", "time": 2, "te')  # a half-written line
            fh.flush()
            time.sleep(0.3)
            fh.write('xt": "second"}\n')
        time.sleep(0.3)
        done.set()

    threading.Thread(target=writer).start()
    for x in follow(path, FIELDS, poll_s=0.05, stop=done.is_set):
        seen.append(x)
    items = [x for x in seen if isinstance(x, Item)]
    assert [i.text for i in items] == ["first", "second"]
    assert not any(isinstance(x, Skip) for x in seen)  # the partial line was never parsed
    assert FLUSH in seen


def test_stdin_stream():
    stream = io.StringIO('{"id": "1", "time": 5, "text": "ok"}\nbad\n')
    out = list(from_stream(stream, FIELDS))
    assert isinstance(out[0], Item) and out[1] == Skip("stdin", "stdin:2", out[1].reason)


RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>
<item><guid>n1</guid><title>ACME profit falls</title><description>&lt;p&gt;Shares &lt;b&gt;slump&lt;/b&gt;&lt;/p&gt;</description>
<pubDate>Mon, 04 Mar 2024 10:00:00 GMT</pubDate></item>
<item><guid>n2</guid><title>No date on this one</title></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom wire</title>
<entry><id>urn:a1</id><title>BOLT beats estimates</title><updated>2024-03-04T11:00:00Z</updated></entry>
</feed>"""


def test_rss_and_atom_from_local_files(tmp_path):
    (tmp_path / "f.rss").write_text(RSS)
    (tmp_path / "f.atom").write_text(ATOM)
    out = list(rss(str(tmp_path / "f.rss")))
    assert out[0] == Item(parse_time("2024-03-04T10:00:00Z"), "Wire", "n1", "ACME profit falls Shares slump", None, "n1")
    assert isinstance(out[1], Skip) and out[1].where == "n2" and "missing time" in out[1].reason
    (entry,) = rss(str(tmp_path / "f.atom"))
    assert entry.id == "urn:a1" and entry.source == "Atom wire" and entry.time == parse_time("2024-03-04T11:00:00Z")
