"""Runs the queued jobs one at a time: each is ``python -m graftkit train CONFIG`` in its own process, with its
own log (``.studio/logs/job-<id>.log``), the same command a terminal would run.

Stop sends the signal ``graftkit train`` turns into a graceful stop (a checkpoint at the end of the current step,
graftkit/train/callbacks.py GracefulStop); resume runs ``graftkit train CONFIG --resume``. The runner is one
thread that starts the next queued job when none runs, and records how each one ended.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from graftkit.apps.studio.access import TOKEN_ENV
from graftkit.apps.studio.jobs import JobStore
from graftkit.apps.studio.progress import read_progress
from graftkit.apps.studio.workspace import Workspace
from graftkit.errors import GraftkitError

POLL_S = 0.3
SHUTDOWN_WAIT_S = 60.0


def stop_signal() -> int:
    """SIGINT, unless this process ignores it (started in the background by a shell, whose children inherit
    the ignored SIGINT): then SIGTERM, which the graceful stop handles the same way."""
    return signal.SIGTERM if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else signal.SIGINT


class JobRunner:
    """Starts queued jobs in order, one at a time, and watches the running one."""

    def __init__(self, workspace: Workspace, store: JobStore):
        self.workspace, self.store = workspace, store
        self.proc: subprocess.Popen | None = None
        self.job_id: int | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._signal = stop_signal()
        self._thread = threading.Thread(target=self._loop, name="studio-jobs", daemon=True)

    def log_path(self, job_id: int) -> Path:
        return self.workspace.state / "logs" / f"job-{job_id}.log"

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._closing:
            with self._lock:
                if self.proc is not None and self.proc.poll() is not None:
                    self._finish()
                if self.proc is None and not self._closing:
                    job = self.store.next_queued()
                    if job is not None:
                        self._launch(job)
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _launch(self, job: dict) -> None:
        args = [sys.executable, "-m", "graftkit", "train", job["config"]] + (["--resume"] if job["resume"] else [])
        env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}  # the studio's secret stays here
        log = self.log_path(job["id"])
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"$ graftkit train {' '.join(args[4:])}\n")
            fh.flush()
            try:
                self.proc = subprocess.Popen(args, cwd=self.workspace.root, env=env, stdin=subprocess.DEVNULL,
                                             stdout=fh, stderr=subprocess.STDOUT)
            except OSError as err:
                self.store.set(job["id"], state="failed", ended_at=time.time(), message=f"could not start: {err}")
                return
        self.job_id = job["id"]
        self.store.set(job["id"], state="running", started_at=time.time(), pid=self.proc.pid)

    def _finish(self) -> None:
        job, code = self.store.get(self.job_id), self.proc.returncode
        progress = read_progress(self.log_path(self.job_id))
        complete = (self.workspace.root / job["run_dir"] / "COMPLETE").is_file()
        if code == 0 and complete:
            state, message = "complete", None
        elif job["state"] == "stopping":
            state, message = "stopped", progress.get("error") or stopped_message(progress)
        else:
            state, message = "failed", progress.get("error") or f"graftkit train exited with code {code}"
        self.store.set(self.job_id, state=state, ended_at=time.time(), exit_code=code, pid=None, message=message)
        self.proc, self.job_id = None, None

    def stop(self, job_id: int) -> dict:
        """Stop a job: a queued one is cancelled, a running one stops gracefully (checkpoint, then exit)."""
        with self._lock:
            job = self.store.get(job_id)
            if job["state"] == "queued":
                self.store.set(job_id, state="cancelled", ended_at=time.time())
            elif job["state"] == "running" and self.job_id == job_id and self.proc is not None:
                self.store.set(job_id, state="stopping")
                self.proc.send_signal(self._signal)
            elif job["state"] != "stopping":
                raise GraftkitError(f"job {job_id} is {job['state']}; only a queued or running job stops")
        self.wake()
        return self.store.get(job_id)

    def close(self) -> None:
        """On studio shutdown: stop the running job gracefully (it shows as interrupted, resumable)."""
        self._closing = True
        self.wake()
        self._thread.join(timeout=5)
        with self._lock:
            if self.proc is None:
                return
            if self.proc.poll() is None:
                self.proc.send_signal(self._signal)
                try:
                    self.proc.wait(SHUTDOWN_WAIT_S)
                except subprocess.TimeoutExpired:
                    return  # still saving: the next studio marks it interrupted (JobStore.recover)
                if not (self.workspace.root / self.store.get(self.job_id)["run_dir"] / "COMPLETE").is_file():
                    return self._interrupted()
            self._finish()

    def _interrupted(self) -> None:
        self.store.set(self.job_id, state="interrupted", ended_at=time.time(), pid=None,
                       exit_code=self.proc.returncode,
                       message="the studio stopped while this job ran; resume it to continue from its checkpoint")
        self.proc, self.job_id = None, None


def stopped_message(progress: dict) -> str:
    """What a stopped job says when graftkit train printed no error of its own: how far its log got."""
    if not progress.get("step"):
        return "stopped before training began; resume starts it"
    if progress["step"] >= progress.get("total", 0):
        return "stopped after training, while the run was being evaluated; resume finishes it"
    return f"stopped at step {progress['step']}/{progress['total']}; resume continues from its last checkpoint"
