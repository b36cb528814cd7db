"""Conversation sessions and turns in the SQLAlchemy store (the monitor's kind of store; may be the same database)."""
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
)

METADATA = MetaData()

sessions = Table(
    "assistant_sessions", METADATA,
    Column("id", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("turns", Integer, nullable=False),
    Column("last_intent", String(200)),
    Column("last_message", Text),
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
)
