"""Assistant sessions under concurrency and ownership: turns of different sessions run at once, turns of one session
are numbered without gaps or duplicates (threads of one process, and two processes' Assistants on one store), a
session belongs to the key that started it, and a store of an older schema keeps opening (gaining the columns added
since: the session's key_id, the turn's reward)."""
from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from assistant_helpers import assistant_tree, intent_run
from sqlalchemy import create_engine, inspect, select

from graftkit.apps.assistant import Assistant
from graftkit.apps.assistant.config import assistant_config_from_dict
from graftkit.apps.assistant.pipeline import Analysis, UnknownSession
from graftkit.apps.assistant.store import METADATA, open_assistant_store, sessions, turns


@pytest.fixture(scope="module")
def intent(tmp_path_factory, tiny_model_dir):
    return intent_run(tmp_path_factory.getbasetemp() / "assistant", tiny_model_dir)


def _bot(intent, db) -> Assistant:
    tree = assistant_tree(intent, None, f"sqlite:///{db}", thresholds={"intent_confidence": 0.0})
    return Assistant.from_config(assistant_config_from_dict(tree))


def _answers(messages):
    return [Analysis("change_pin", 0.9, None, None, []) for _ in messages]


def _in_threads(fn, n: int) -> list:
    with ThreadPoolExecutor(n) as pool:
        return [f.result() for f in [pool.submit(fn, i) for i in range(n)]]


def test_turns_of_different_sessions_run_at_once(intent, tmp_path):
    bot = _bot(intent, tmp_path / "a.db")
    both_inside = threading.Barrier(2, timeout=2)

    def slow(messages):
        both_inside.wait()  # a lock around whole turns never lets the second turn in: BrokenBarrierError
        time.sleep(0.3)
        return _answers(messages)

    bot.analyze = slow
    start = time.perf_counter()
    outs = _in_threads(lambda i: bot.reply("reset my card pin", f"session-{i}"), 2)
    assert time.perf_counter() - start < 0.6  # less than the two slow model calls one after the other
    assert [(o["session_id"], o["turn"]) for o in outs] == [("session-0", 1), ("session-1", 1)]
    assert len(bot.session_locks) == 0  # a session's lock is dropped once no turn holds it
    bot.close()


def test_turns_of_one_session_are_serialised_and_numbered_without_gaps(intent, tmp_path):
    bot = _bot(intent, tmp_path / "a.db")
    inside, most = [0], [0]
    count = threading.Lock()

    def counting(messages):
        with count:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.01)
        with count:
            inside[0] -= 1
        return _answers(messages)

    bot.analyze = counting
    outs = _in_threads(lambda i: bot.reply(f"message {i}", "one"), 8)
    assert most[0] == 1  # never two turns of one session at once
    assert sorted(o["turn"] for o in outs) == list(range(1, 9))
    stored = bot.history("one")
    assert [t["turn"] for t in stored] == list(range(1, 9))
    assert {t["message"]: t["turn"] for t in stored} == {f"message {i}": o["turn"] for i, o in enumerate(outs)}
    with bot.engine.connect() as conn:
        assert conn.execute(select(sessions.c.turns).where(sessions.c.id == "one")).scalar_one() == 8
    assert len(bot.session_locks) == 0
    bot.close()


@pytest.mark.parametrize("existing", [True, False], ids=["known-session", "new-session"])
def test_two_workers_racing_on_one_session_store_each_turn_once(intent, tmp_path, existing):
    """Two Assistants on one store (two server processes): both read the session before either writes; the
    loser's write is refused and its turn redone on a fresh read, so the numbers are 1..n with no duplicate."""
    workers = [_bot(intent, tmp_path / "a.db") for _ in range(2)]
    if existing:
        workers[0].analyze = _answers
        workers[0].reply("first", "shared", owner="k")
    race = threading.Barrier(2, timeout=2)
    calls = [0, 0]

    def reads_then_waits(w):
        def analyze(messages):
            calls[w] += 1
            if calls[w] == 1:
                race.wait()  # both workers have read the session's turn count
            return _answers(messages)
        return analyze

    for w, bot in enumerate(workers):
        bot.analyze = reads_then_waits(w)
    outs = _in_threads(lambda w: workers[w].reply(f"from worker {w}", "shared", owner="k"), 2)
    first = 2 if existing else 1
    assert sorted(o["turn"] for o in outs) == [first, first + 1]
    assert sum(calls) == 3  # exactly one turn was redone
    stored = workers[0].history("shared", owner="k")
    assert [t["turn"] for t in stored] == list(range(1, first + 2))
    assert {t["message"] for t in stored[-2:]} == {"from worker 0", "from worker 1"}
    for bot in workers:
        bot.close()


def test_a_session_belongs_to_the_key_that_started_it(intent, tmp_path):
    bot = _bot(intent, tmp_path / "a.db")
    bot.analyze = _answers
    sid = bot.reply("reset my card pin", owner="key-a")["session_id"]
    with pytest.raises(UnknownSession, match=f"no conversation '{sid}'"):
        bot.reply("and that?", sid, owner="key-b")
    assert bot.history(sid, owner="key-b") == []
    assert bot.reply("and that?", sid, owner="key-a")["turn"] == 2
    assert [t["turn"] for t in bot.history(sid, owner="key-a")] == [1, 2]
    assert len(bot.history(sid)) == 2  # a local caller (the CLI, owner None) is not checked
    with bot.engine.connect() as conn:
        assert conn.execute(select(sessions.c.key_id).where(sessions.c.id == sid)).scalar_one() == "key-a"
    bot.close()


def test_a_store_of_the_previous_schema_keeps_opening(intent, tmp_path):
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:  # the sessions table as the first release created it (no key_id)
        conn.execute("CREATE TABLE assistant_sessions (id VARCHAR(64) NOT NULL PRIMARY KEY, created_at FLOAT NOT "
                     "NULL, updated_at FLOAT NOT NULL, turns INTEGER NOT NULL, last_intent VARCHAR(200), "
                     "last_message TEXT)")
        conn.execute("INSERT INTO assistant_sessions VALUES ('old', 1.0, 1.0, 1, 'change_pin', 'reset my pin')")
    engine = create_engine(f"sqlite:///{db}")
    METADATA.create_all(engine, tables=[turns])
    with engine.begin() as conn:
        conn.execute(turns.insert().values(session_id="old", turn=1, at=1.0, message="reset my pin",
                                           intent="change_pin", confidence=0.9, followup=False, handoff=False,
                                           reply="..."))
    engine.dispose()
    for _ in range(2):  # the column is added once; opening again finds it
        bot = _bot(intent, db)
        bot.analyze = _answers
        assert bot.history("old", owner="key-a") == []  # a session from before keys belongs to no key
        with pytest.raises(UnknownSession):
            bot.reply("and that?", "old", owner="key-a")
        assert bot.reply("new one", "fresh", owner="key-a")["turn"] >= 1
        bot.close()
    bot = _bot(intent, db)
    bot.analyze = _answers
    assert bot.reply("and that?", "old")["turn"] == 2  # locally it goes on
    assert [t["turn"] for t in bot.history("old")] == [1, 2]
    bot.close()


def _reward_column(engine) -> dict:
    return next(c for c in inspect(engine).get_columns("assistant_turns") if c["name"] == "reward")


def test_a_fresh_store_has_a_nullable_reward_per_turn(intent, tmp_path):
    engine = open_assistant_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert _reward_column(engine)["nullable"]
    engine.dispose()
    bot = _bot(intent, tmp_path / "fresh.db")
    bot.analyze = _answers
    sid = bot.reply("reset my pin")["session_id"]  # no reward run: NULL
    bot._reply_text = lambda message, d, answers: ("a scored reply", 0.75)  # as a reward run's ranking returns
    bot.reply("and that?", sid)
    assert [(t["reply"], t["reward"]) for t in bot.history(sid)][1] == ("a scored reply", 0.75)
    assert bot.history(sid)[0]["reward"] is None
    bot.close()


def test_a_store_without_the_reward_column_gains_it_on_open(intent, tmp_path):
    db = tmp_path / "before-rewards.db"
    with sqlite3.connect(db) as conn:  # the turns table as the releases before rewards created it
        conn.execute("CREATE TABLE assistant_turns (session_id VARCHAR(64) NOT NULL, turn INTEGER NOT NULL, at FLOAT "
                     "NOT NULL, message TEXT NOT NULL, intent VARCHAR(200), confidence FLOAT NOT NULL, similarity "
                     "FLOAT, followup BOOLEAN NOT NULL, handoff BOOLEAN NOT NULL, reason TEXT, faq_id VARCHAR(200), "
                     "reply TEXT NOT NULL, PRIMARY KEY (session_id, turn), FOREIGN KEY(session_id) REFERENCES "
                     "assistant_sessions (id))")
        conn.execute("INSERT INTO assistant_turns VALUES ('old', 1, 1.0, 'reset my pin', 'change_pin', 0.9, NULL, 0, "
                     "0, NULL, NULL, '...')")
    engine = create_engine(f"sqlite:///{db}")
    METADATA.create_all(engine, tables=[sessions])
    with engine.begin() as conn:
        conn.execute(sessions.insert().values(id="old", created_at=1.0, updated_at=1.0, turns=1,
                                              last_intent="change_pin", last_message="reset my pin"))
    assert "reward" not in {c["name"] for c in inspect(engine).get_columns("assistant_turns")}
    engine.dispose()
    for reward in (0.5, -0.25):  # the column is added once; opening again finds it
        bot = _bot(intent, db)
        bot.analyze = _answers
        assert _reward_column(bot.engine)["nullable"]
        bot._reply_text = lambda message, d, answers, r=reward: ("a scored reply", r)
        bot.reply("and that?", "old")
        bot.close()
    bot = _bot(intent, db)
    assert [(t["turn"], t["reward"]) for t in bot.history("old")] == [(1, None), (2, 0.5), (3, -0.25)]
    bot.close()
