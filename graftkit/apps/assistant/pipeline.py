"""The assistant: one turn = intent → FAQ retrieval → out-of-scope decision → answer or handoff, stored.

Sessions keep their turns and last intent in the store. A short follow-up ("and how long does that
take?") whose own intent is unsure inherits the session's last intent, and its FAQ search uses the
previous question as context.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import select

from graftkit.apps.assistant.config import AssistantConfig
from graftkit.apps.assistant.decide import Decision, decide
from graftkit.apps.assistant.store import METADATA, sessions, turns
from graftkit.apps.store import open_engine, with_retry
from graftkit.errors import ConfigError
from graftkit.inference.runs import open_run
from graftkit.tasks.capabilities import ScoresLabels
from graftkit.inference.retrieval.index import Index
from graftkit.inference.retrieval.rerank import CrossEncoderReranker

_FOLLOWUP_STARTS = ("and ", "what about", "how about", "also ", "but ", "then ")
_PRONOUNS = {"it", "that", "this", "those", "them", "there"}


def is_followup(message: str, max_words: int) -> bool:
    """A short message that leans on the previous turn ("and how long does that take?")."""
    words = message.lower().strip(" ?!.").split()
    if not words or len(words) > max_words:
        return False
    return message.lower().lstrip().startswith(_FOLLOWUP_STARTS) or bool(_PRONOUNS & set(words))


@dataclass
class Analysis:
    """The model signals for one message (what calibration searches thresholds over)."""

    intent: str
    confidence: float
    similarity: float | None
    hits: list[dict]


class AssistantMetrics:
    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.turns = Counter("graftkit_assistant_turns", "chat turns", registry=r)
        self.handoffs = Counter("graftkit_assistant_handoffs", "turns handed to a person", ["kind"], registry=r)
        self.followups = Counter("graftkit_assistant_followups", "turns read as follow-ups", registry=r)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class Assistant:
    """Answer customer messages in sessions.

    Args:
        cfg: the assistant config.
        intent: the intent run's inference object (``open_run``), a single-label classifier.
        index: optional ``Index`` over the FAQ (entries with ``answer`` / ``intent`` columns are used).
        reranker: optional ``CrossEncoderReranker``.
        generate: optional ``(prompt) -> text`` for retrieval-augmented replies.
    """

    def __init__(self, cfg: AssistantConfig, intent, index=None, reranker=None,
                 generate: Callable[[str], str] | None = None):
        self.cfg, self.intent, self.index, self.reranker, self.generate = cfg, intent, index, reranker, generate
        scores = intent.task.optional(ScoresLabels)
        if scores is None or scores.multi_label:
            raise ConfigError(f"intent_run {cfg.intent_run} must be a single-label classification run, not a "
                              f"{intent.task.label()} run")
        labels = [str(x) for x in scores.labels]
        if cfg.oos_label and cfg.oos_label not in labels:
            raise ConfigError(f"oos_label '{cfg.oos_label}' is not a label of {cfg.intent_run}")
        self.engine = open_engine(cfg.store, METADATA, cfg.store_retries, cfg.store_backoff_s)
        self.metrics = AssistantMetrics()
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: AssistantConfig) -> Assistant:
        """Load the runs the config names."""
        index = Index(cfg.retrieval_run, cfg.index) if cfg.retrieval_run else None
        reranker = CrossEncoderReranker(open_run(cfg.rerank_run), cfg.positive_label) if cfg.rerank_run else None
        generate = None
        if cfg.generation:
            gen = open_run(cfg.generation.run, command="generate").with_overrides(
                max_new_tokens=cfg.generation.max_new_tokens)
            generate = lambda prompt: gen.predict([prompt])[0].generated.strip()  # noqa: E731
        return cls(cfg, open_run(cfg.intent_run), index, reranker, generate)

    # -- signals --------------------------------------------------------------------
    def analyze(self, messages: Sequence[str], context: Sequence[str] | None = None) -> list[Analysis]:
        """Intent, confidence and best FAQ similarity of each message (batched; calibration uses this)."""
        preds = self.intent.predict(list(messages))
        queries = [f"{c} {m}" if c else m for m, c in zip(messages, context or [None] * len(messages))]
        hits = self.index.search(queries, max(self.cfg.k, 10)) if self.index is not None else [[] for _ in messages]
        return [Analysis(str(p.label), float(p.score), h[0]["score"] if h else None, h)
                for p, h in zip(preds, hits)]

    # -- one turn -------------------------------------------------------------------
    def reply(self, message: str, session_id: str | None = None) -> dict:
        """Answer one message; a missing or unknown ``session_id`` starts a new session."""
        message = message.strip()
        with self._lock:
            session = self._session(session_id)
            followup = bool(session["last_intent"]) and is_followup(message, self.cfg.followup_max_words)
            a = self.analyze([message], [session["last_message"] if followup else None])[0]
            if followup and a.confidence < self.cfg.thresholds.intent_confidence:
                # an unsure short follow-up inherits the last intent (its own prediction is about "that")
                a = Analysis(session["last_intent"], a.confidence, a.similarity, a.hits)
                d = decide(a.intent, 1.0, a.similarity, self.cfg.thresholds, self.cfg.oos_label,
                           self.cfg.handoff_intents)
                d = Decision(d.answer, d.reason, d.intent, a.confidence, d.similarity)
            else:
                followup = False
                d = decide(a.intent, a.confidence, a.similarity, self.cfg.thresholds, self.cfg.oos_label,
                           self.cfg.handoff_intents)
            answers = self._answers(message, a, d) if d.answer else []
            text = self._reply_text(message, d, answers)
            out = {"session_id": session["id"], "turn": session["turns"] + 1, "reply": text, "intent": d.intent,
                   "closest_intent": a.intent, "confidence": round(a.confidence, 4),
                   "similarity": None if a.similarity is None else round(a.similarity, 4),
                   "followup": followup, "handoff": not d.answer, "reason": d.reason, "answers": answers}
            self._store(session, message, out)
        self.metrics.turns.inc()
        if followup:
            self.metrics.followups.inc()
        if not d.answer:
            self.metrics.handoffs.labels("out_of_scope" if d.intent is None else "handoff_intent").inc()
        return out

    def _answers(self, query: str, a: Analysis, d: Decision) -> list[dict]:
        hits = a.hits
        if self.reranker is not None and hits:
            hits = self.reranker.rerank(query, hits)
        if any("intent" in h for h in hits):  # entries tagged with the decided intent first (stable order)
            hits = sorted(hits, key=lambda h: str(h.get("intent")) != d.intent)
        return [{**h, "rank": r + 1} for r, h in enumerate(hits[:self.cfg.k])]

    def _reply_text(self, message: str, d: Decision, answers: list[dict]) -> str:
        if not d.answer:
            return self.cfg.handoff_message
        if self.generate is not None and answers:
            context = "\n".join(f"- {h.get('answer', h['text'])}" for h in answers)
            return self.generate(self.cfg.generation.prompt.format(context=context, question=message))
        if answers:
            return str(answers[0].get("answer", answers[0]["text"]))
        return f"(intent: {d.intent})"  # no FAQ configured: the caller routes on the intent

    # -- store ----------------------------------------------------------------------
    def _session(self, session_id: str | None) -> dict[str, Any]:
        def read():
            with self.engine.connect() as conn:
                return conn.execute(select(sessions).where(sessions.c.id == session_id)).first()

        row = self._retry(read) if session_id else None
        if row is None:
            return {"id": session_id if session_id and _valid_id(session_id) else uuid.uuid4().hex, "turns": 0,
                    "last_intent": None, "last_message": None, "new": True}
        return {**dict(row._mapping), "new": False}

    def _store(self, session: dict, message: str, out: dict) -> None:
        now = time.time()
        last_intent = out["intent"] or session["last_intent"]

        def write():
            with self.engine.begin() as conn:
                if session["new"]:
                    conn.execute(sessions.insert().values(id=session["id"], created_at=now, updated_at=now, turns=1,
                                                          last_intent=out["intent"], last_message=message))
                else:
                    conn.execute(sessions.update().where(sessions.c.id == session["id"]).values(
                        updated_at=now, turns=out["turn"], last_intent=last_intent, last_message=message))
                conn.execute(turns.insert().values(
                    session_id=session["id"], turn=out["turn"], at=now, message=message, intent=out["intent"],
                    confidence=out["confidence"], similarity=out["similarity"], followup=out["followup"],
                    handoff=out["handoff"], reason=out["reason"],
                    faq_id=str(out["answers"][0]["id"]) if out["answers"] else None, reply=out["reply"]))

        self._retry(write)

    def history(self, session_id: str) -> list[dict]:
        """The stored turns of a session, in order."""
        with self.engine.connect() as conn:
            q = select(turns).where(turns.c.session_id == session_id).order_by(turns.c.turn)
            return [dict(r._mapping) for r in conn.execute(q)]

    def _retry(self, fn):
        return with_retry(fn, self.cfg.store, self.cfg.store_retries, self.cfg.store_backoff_s)

    def close(self) -> None:
        self.engine.dispose()


def _valid_id(s: str) -> bool:
    return 0 < len(s) <= 64 and all(c.isalnum() or c in "-_." for c in s)
