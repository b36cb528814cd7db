"""The assistant: one turn = intent → FAQ retrieval → out-of-scope decision → answer or handoff, stored; with a
reward run, the answer is the candidate reply it scores best (graftkit/apps/assistant/replies.py).

Sessions keep their turns, last intent and the message that set it in the store. A short message that leans
on the previous turn ("and how long does that take?") is read both alone and after that message; when the
joint reading's intent is the previous one and the model is surer of it than of the message's own intent, the
turn is a follow-up: it keeps the previous intent and is decided (detector, FAQ search) on the joint reading,
so a message that is vague alone is not handed off as out of scope.

Turns of different sessions run at once (model calls, generation and store retries hold no shared lock); turns of
one session are serialised by that session's lock in this process, and across server processes by the store's
compare-and-set on the session's turn count (see ``Assistant._store``). A session belongs to the API key that
started it: another key is told it does not exist.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from graftkit.apps.assistant.config import AssistantConfig
from graftkit.apps.assistant.decide import Decision, decide
from graftkit.apps.assistant.replies import RewardRanker, answer_text, rank_replies
from graftkit.apps.assistant.store import open_assistant_store, sessions, turns
from graftkit.apps.store import StoreError, with_retry
from graftkit.errors import ConfigError, GraftkitError
from graftkit.inference.retrieval.index import Index
from graftkit.inference.retrieval.rerank import CrossEncoderReranker
from graftkit.inference.runs import open_run
from graftkit.inference.scope import ScopeRule
from graftkit.tasks.capabilities import ScoresLabels

_FOLLOWUP_STARTS = ("and ", "what about", "how about", "also ", "but ", "then ")
_PRONOUNS = {"it", "that", "this", "those", "them", "there"}
_CONFLICT_TRIES = 5  # a turn redone this often because other workers kept writing its session: StoreError


class UnknownSession(GraftkitError):
    """The session does not exist for this caller: another key owns it (it is not said which, so ids cannot be
    probed)."""


class SessionLocks:
    """One lock per session id, kept only while a turn holds or waits for it (the map does not grow with every
    session ever seen); the small lock guarding the map is never held during a turn."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict[str, list] = {}  # session id -> [its lock, turns holding or waiting]

    @contextmanager
    def hold(self, session_id: str) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(session_id, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[session_id]

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)


def is_followup(message: str, max_words: int) -> bool:
    """A short message that leans on the previous turn ("and how long does that take?")."""
    words = message.lower().strip(" ?!.").split()
    if not words or len(words) > max_words:
        return False
    return message.lower().lstrip().startswith(_FOLLOWUP_STARTS) or bool(_PRONOUNS & set(words))


@dataclass
class Analysis:
    """The model signals for one message (what calibration searches thresholds over); ``out_of_scope_score`` is
    the intent run's detector score (None: the run has no detector)."""

    intent: str
    confidence: float
    out_of_scope_score: float | None
    similarity: float | None
    hits: list[dict]


def reads_as_followup(own: Analysis, joint: Analysis, last_intent: str) -> bool:
    """Whether the message read after the previous one (``joint``) is a follow-up of ``last_intent``.

    Both readings are the same model's probability of its best intent, one for the message alone and one for
    the message in the context of the previous one: the turn takes the reading the model is surer of. A
    message that is clear alone ("and how do i change my pin?") keeps its own intent; a vague one ("and how
    long does that take?") whose joint reading is still the previous intent follows it.
    """
    return joint.intent == last_intent and joint.confidence >= own.confidence


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
        ranker: optional ``RewardRanker`` that chooses the reply among the candidates (``reward_run``).
    """

    def __init__(self, cfg: AssistantConfig, intent, index=None, reranker=None,
                 generate: Callable[[str], str] | None = None, ranker: RewardRanker | None = None):
        self.cfg, self.intent, self.index, self.reranker, self.generate = cfg, intent, index, reranker, generate
        self.ranker = ranker
        scores = intent.task.optional(ScoresLabels)
        if scores is None or scores.multi_label:
            raise ConfigError(f"intent_run {cfg.intent_run} must be a single-label classification run, not a "
                              f"{intent.task.label()} run")
        labels = [str(x) for x in scores.labels]
        if cfg.oos_label and cfg.oos_label not in labels:
            raise ConfigError(f"oos_label '{cfg.oos_label}' is not a label of {cfg.intent_run}")
        self.rule  # noqa: B018  a threshold that cannot apply to the intent run fails here, at start
        self.engine = open_assistant_store(cfg.store, cfg.store_retries, cfg.store_backoff_s)
        self.metrics = AssistantMetrics()
        self.session_locks = SessionLocks()

    @property
    def rule(self) -> ScopeRule:
        """The intent run's out-of-scope rule under the config's thresholds (read anew: calibration changes them)."""
        th = self.cfg.thresholds
        return ScopeRule.for_run(self.intent, self.cfg.intent_run, th.out_of_scope_score, th.intent_confidence)

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
        ranker = RewardRanker.from_run(cfg.reward_run) if cfg.reward_run else None
        return cls(cfg, open_run(cfg.intent_run), index, reranker, generate, ranker)

    # -- signals --------------------------------------------------------------------
    def analyze(self, messages: Sequence[str]) -> list[Analysis]:
        """Intent, confidence, detector score and best FAQ similarity of each message (batched; calibration uses
        this)."""
        preds = self.intent.predict(list(messages))
        hits = self.index.search(list(messages), max(self.cfg.k, 10)) if self.index is not None \
            else [[] for _ in messages]
        return [Analysis(str(p.label), float(p.score), p.out_of_scope_score, h[0]["score"] if h else None, h)
                for p, h in zip(preds, hits)]

    def decision(self, a: Analysis) -> Decision:
        """The decision on one message's signals under the config's thresholds."""
        return decide(a.intent, a.confidence, a.out_of_scope_score, a.similarity, self.rule,
                      self.cfg.thresholds.retrieval_similarity, self.cfg.oos_label, self.cfg.handoff_intents)

    # -- one turn -------------------------------------------------------------------
    def reply(self, message: str, session_id: str | None = None, owner: str | None = None) -> dict:
        """Answer one message; a missing or unknown ``session_id`` starts a new session, bound to ``owner``.

        ``owner`` is the caller's API key id (the server always passes one; "anonymous" without keys). A session
        bound to another key raises ``UnknownSession``; ``owner=None`` (the CLI, which holds the database anyway)
        is not checked.
        """
        message = message.strip()
        session_id = session_id if session_id and _valid_id(session_id) else uuid.uuid4().hex
        with self.session_locks.hold(session_id):  # one turn of a session at a time; other sessions go on
            out, d, followup = self._turn(message, session_id, owner)
        self.metrics.turns.inc()
        if followup:
            self.metrics.followups.inc()
        if not d.answer:
            self.metrics.handoffs.labels("out_of_scope" if d.intent is None else "handoff_intent").inc()
        return out

    def _turn(self, message: str, session_id: str, owner: str | None) -> tuple[dict, Decision, bool]:
        """Read the session, answer, store; redone from a fresh read when another worker stored a turn of the same
        session in between (so the turn number and the context it was read in are the stored ones)."""
        for _ in range(_CONFLICT_TRIES):
            session = self._session(session_id, owner)
            a, followup = self._read(message, session)
            d = self.decision(a)
            answers = self._answers(message, a, d) if d.answer else []
            text, reward = self._reply_text(message, d, answers)
            out = {"session_id": session["id"], "turn": session["turns"] + 1, "reply": text, "reward": reward,
                   "intent": d.intent, "closest_intent": a.intent, "confidence": round(a.confidence, 4),
                   "out_of_scope_score": _rounded(a.out_of_scope_score), "similarity": _rounded(a.similarity),
                   "followup": followup, "handoff": not d.answer, "decided_by": d.decided_by, "reason": d.reason,
                   "answers": answers}
            if self._store(session, message, out, owner):
                return out, d, followup
        raise StoreError(f"session {session_id}: other workers stored a turn of it {_CONFLICT_TRIES} times while "
                         "this one was answered; send the message again")

    def _read(self, message: str, session: dict) -> tuple[Analysis, bool]:
        """(the signals the turn is decided on, whether it is a follow-up); see ``reads_as_followup``."""
        last_intent, last_message = session["last_intent"], session["last_message"]
        if not (last_intent and last_message and is_followup(message, self.cfg.followup_max_words)):
            return self.analyze([message])[0], False
        own, joint = self.analyze([message, f"{last_message} {message}"])
        if reads_as_followup(own, joint, last_intent):
            return joint, True
        return own, False

    def _answers(self, query: str, a: Analysis, d: Decision) -> list[dict]:
        hits = a.hits
        if self.reranker is not None and hits:
            hits = self.reranker.rerank(query, hits)
        if any("intent" in h for h in hits):  # entries tagged with the decided intent first (stable order)
            hits = sorted(hits, key=lambda h: str(h.get("intent")) != d.intent)
        return [{**h, "rank": r + 1} for r, h in enumerate(hits[:self.cfg.k])]

    def _reply_text(self, message: str, d: Decision, answers: list[dict]) -> tuple[str, float | None]:
        """(the reply, its reward: None without a reward run); see graftkit/apps/assistant/replies.py."""
        if not d.answer:
            return self.cfg.handoff_message, None
        if not answers:
            return f"(intent: {d.intent})", None  # no FAQ configured: the caller routes on the intent
        generated = []
        if self.generate is not None:
            context = "\n".join(f"- {answer_text(h)}" for h in answers)
            generated.append(self.generate(self.cfg.generation.prompt.format(context=context, question=message)))
        if self.ranker is not None:
            return rank_replies(self.ranker, message, answers, generated)
        return (generated or [answer_text(answers[0])])[0], None

    # -- store ----------------------------------------------------------------------
    def _session(self, session_id: str, owner: str | None) -> dict[str, Any]:
        def read():
            with self.engine.connect() as conn:
                return conn.execute(select(sessions).where(sessions.c.id == session_id)).first()

        row = self._retry(read)
        if row is None:
            return {"id": session_id, "turns": 0, "last_intent": None, "last_message": None, "key_id": owner,
                    "new": True}
        if owner is not None and row.key_id != owner:
            raise UnknownSession(f"no conversation '{session_id}'")
        return {**dict(row._mapping), "new": False}

    def _store(self, session: dict, message: str, out: dict, owner: str | None) -> bool:
        """Store the turn; False when another worker stored a turn of the session since it was read.

        The guarantee across processes is a compare-and-set in one transaction: a new session's row is inserted
        (its primary key refuses a second insert), a known one's turn count is updated only where it still holds
        the count read (0 rows updated: someone else stored that turn), and the turn row's primary key
        ``(session_id, turn)`` refuses a duplicate number. A refused write stores nothing and the turn is redone.
        """
        now = time.time()
        # the context a later follow-up reads: the intent and the message that set it (a follow-up keeps both;
        # an out-of-scope turn ends the context, so nothing after it follows an older question)
        if out["followup"]:
            last_intent, last_message = session["last_intent"], session["last_message"]
        elif out["intent"] is None:
            last_intent, last_message = None, None
        else:
            last_intent, last_message = out["intent"], message

        def write():
            with self.engine.begin() as conn:
                if session["new"]:
                    conn.execute(sessions.insert().values(id=session["id"], created_at=now, updated_at=now, turns=1,
                                                          last_intent=last_intent, last_message=last_message,
                                                          key_id=owner))
                else:
                    done = conn.execute(sessions.update().where(
                        (sessions.c.id == session["id"]) & (sessions.c.turns == session["turns"])).values(
                        updated_at=now, turns=out["turn"], last_intent=last_intent, last_message=last_message))
                    if done.rowcount != 1:
                        raise _Conflict  # rolls the transaction back
                conn.execute(turns.insert().values(
                    session_id=session["id"], turn=out["turn"], at=now, message=message, intent=out["intent"],
                    confidence=out["confidence"], similarity=out["similarity"], followup=out["followup"],
                    handoff=out["handoff"], reason=out["reason"],
                    faq_id=str(out["answers"][0]["id"]) if out["answers"] else None, reply=out["reply"],
                    reward=out["reward"]))

        try:
            self._retry(write)
        except (_Conflict, IntegrityError):
            return False
        return True

    def history(self, session_id: str, owner: str | None = None) -> list[dict]:
        """The stored turns of a session, in order; none when ``owner`` is given and the session is not its."""
        q = select(turns).where(turns.c.session_id == session_id).order_by(turns.c.turn)
        if owner is not None:
            q = q.join(sessions, sessions.c.id == turns.c.session_id).where(sessions.c.key_id == owner)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def _retry(self, fn):
        return with_retry(fn, self.cfg.store, self.cfg.store_retries, self.cfg.store_backoff_s)

    def close(self) -> None:
        self.engine.dispose()


class _Conflict(Exception):
    """Another worker stored a turn of the session between this turn's read and its write."""


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def _valid_id(s: str) -> bool:
    return 0 < len(s) <= 64 and all(c.isalnum() or c in "-_." for c in s)
