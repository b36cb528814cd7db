"""Conversation sessions and turns in the SQLAlchemy store (the monitor's kind of store; may be the same database).

A session row carries the id of the API key that started it (``key_id``, a hash prefix, never the key), and the
number of its stored turns; ``(session_id, turn)`` is the turns table's primary key, so no turn number is stored
twice whatever the number of server workers. A turn row carries the reply's ``reward`` when a reward run chose it
(NULL otherwise). Columns added after the first release are added to an older store when it is opened.
"""
from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from graftkit.apps.store import open_engine, with_retry

METADATA = MetaData()

sessions = Table(
    "assistant_sessions", METADATA,
    Column("id", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("turns", Integer, nullable=False),
    Column("last_intent", String(200)),
    Column("last_message", Text),
    Column("key_id", String(64)),  # the API key that owns the session; NULL: started locally (CLI) or before keys
)

turns = Table(
    "assistant_turns", METADATA,
    Column("session_id", String(64), ForeignKey("assistant_sessions.id"), primary_key=True),
    Column("turn", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("message", Text, nullable=False),
    Column("intent", String(200)),
    Column("confidence", Float, nullable=False),
    Column("similarity", Float),
    Column("followup", Boolean, nullable=False),
    Column("handoff", Boolean, nullable=False),
    Column("reason", Text),
    Column("faq_id", String(200)),
    Column("reply", Text, nullable=False),
    Column("reward", Float),  # the reward run's score of the reply; NULL: no reward run, a handoff, or before rewards
)


#: columns added after the first release, created on open in stores that lack them (create_all adds no columns)
_ADDED_COLUMNS = {sessions: ["key_id"], turns: ["reward"]}


def open_assistant_store(url: str, retries: int = 5, backoff_s: float = 0.5) -> Engine:
    """An engine with the assistant's tables, an older store's missing columns added.

    Raises:
        StoreError: bad URL, or the database stayed unreachable through every retry.
    """
    engine = open_engine(url, METADATA, retries, backoff_s)
    with_retry(lambda: _add_missing_columns(engine), url, retries, backoff_s, "upgrade")
    return engine


def _add_missing_columns(engine: Engine) -> None:
    for table, names in _ADDED_COLUMNS.items():
        present = {c["name"] for c in inspect(engine).get_columns(table.name)}
        for name in names:
            if name in present:
                continue
            kind = table.c[name].type.compile(engine.dialect)
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"))
            except DBAPIError:
                # another worker opening the same store may have added it first; only a real failure is raised
                if name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise
