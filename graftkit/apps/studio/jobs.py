"""The studio's job table: training jobs, in the order they were asked for, kept in SQLite (SQLAlchemy).

A job is one run: its config (workspace-relative), the run folder it builds, and its state::

    queued → running → complete | failed | stopped (after Stop: checkpointed, resumable)
    running → interrupted   (the studio ended while it ran; resumable)
    queued → cancelled      (Stop before it started)

Resuming a stopped, interrupted or failed job queues the same job again with ``resume`` set. The table
outlives the studio process: ``recover`` (called on start) marks jobs left running as interrupted.
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.engine import Engine

from graftkit.apps.store import open_engine, with_retry
from graftkit.errors import GraftkitError

METADATA = MetaData()

jobs = Table(
    "studio_jobs", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("config", Text, nullable=False),        # workspace-relative YAML path
    Column("run_name", String(200), nullable=False),
    Column("run_dir", Text, nullable=False),       # workspace-relative run folder
    Column("state", String(20), nullable=False),
    Column("resume", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("pid", Integer),
    Column("exit_code", Integer),
    Column("message", Text),                       # the last error line, or why it stopped
)

ACTIVE = ("running", "stopping")
RESUMABLE = ("stopped", "interrupted", "failed")


class JobStore:
    """The job table of one workspace (``url``: its SQLite file)."""

    def __init__(self, url: str):
        self.url = url
        self.engine: Engine = open_engine(url, METADATA)

    def _write(self, statement) -> Any:
        def run():
            with self.engine.begin() as conn:
                return conn.execute(statement)
        return with_retry(run, self.url)

    def _read(self, statement) -> list[dict]:
        def run():
            with self.engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(statement)]
        return with_retry(run, self.url, what="read")

    def add(self, config: str, run_name: str, run_dir: str) -> int:
        """Queue a new job; returns its id. Refused while another job builds the same run folder."""
        busy = [j for j in self.all() if j["run_dir"] == run_dir and j["state"] in ("queued",) + ACTIVE]
        if busy:
            raise GraftkitError(f"job {busy[0]['id']} is already building {run_dir} ({busy[0]['state']})")
        res = self._write(insert(jobs).values(config=config, run_name=run_name, run_dir=run_dir, state="queued",
                                              resume=False, created_at=time.time()))
        return int(res.inserted_primary_key[0])

    def get(self, job_id: int) -> dict:
        rows = self._read(select(jobs).where(jobs.c.id == job_id))
        if not rows:
            raise GraftkitError(f"no job {job_id}")
        return rows[0]

    def all(self) -> list[dict]:
        return self._read(select(jobs).order_by(jobs.c.id))

    def set(self, job_id: int, **values) -> None:
        self._write(update(jobs).where(jobs.c.id == job_id).values(**values))

    def next_queued(self) -> dict | None:
        rows = self._read(select(jobs).where(jobs.c.state == "queued").order_by(jobs.c.id).limit(1))
        return rows[0] if rows else None

    def requeue(self, job_id: int) -> dict:
        """Queue a stopped, interrupted or failed job again, to continue from its last checkpoint."""
        job = self.get(job_id)
        if job["state"] not in RESUMABLE:
            raise GraftkitError(f"job {job_id} is {job['state']}; only a stopped, interrupted or failed job resumes")
        self.set(job_id, state="queued", resume=True, ended_at=None, exit_code=None, message=None, pid=None)
        return self.get(job_id)

    def recover(self) -> list[int]:
        """Mark the jobs a previous studio left running as interrupted (resumable); returns their ids."""
        left = [j["id"] for j in self.all() if j["state"] in ACTIVE]
        for job_id in left:
            self.set(job_id, state="interrupted", ended_at=time.time(), pid=None,
                     message="the studio ended while this job ran; resume it to continue from its last checkpoint")
        return left
