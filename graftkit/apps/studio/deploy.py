"""The Deploy page: export a run to ONNX (fp32, or fp32 + int8) with its parity report, and local services.

An export runs in a thread (the ``onnx`` export format, as ``graftkit export`` calls it; one at a time per run) and its
state, log lines and parity report are read back by the page. A service is ``python -m graftkit serve RUN``
in its own process, bound to 127.0.0.1 on a free port, with a new API key: the key goes to the process in
its environment (``GRAFTKIT_API_KEYS``, which graftkit/serve/security.py reads), never on its command line nor
in a log, and the page shows it once. Services stop with the studio.
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from graftkit.apps.studio.access import TOKEN_ENV
from graftkit.apps.studio.workspace import Workspace
from graftkit.errors import GraftkitError
from graftkit.export.formats import EXPORT_FORMATS
from graftkit.io import read_json

#: graftkit/serve/security.py ENV_KEYS (the serve layer is above the studio's; a test checks they agree)
SERVE_KEYS_ENV = "GRAFTKIT_API_KEYS"
STOP_WAIT_S = 30.0


class Exports:
    """ONNX exports in background threads, by run name."""

    def __init__(self):
        self._state: dict[str, dict] = {}
        self._lock = threading.Lock()

    def start(self, run_dir: Path, quantize: str | None) -> dict:
        if quantize not in (None, "int8"):
            raise GraftkitError(f"precision: unknown '{quantize}'; choose fp32, or int8 (fp32 + int8)")
        name = run_dir.name
        with self._lock:
            if self._state.get(name, {}).get("state") == "running":
                raise GraftkitError(f"run {name} is being exported already")
            state = self._state[name] = {"state": "running", "quantize": quantize, "log": [], "error": None}
        threading.Thread(target=self._run, args=(run_dir, quantize, state), daemon=True,
                         name=f"studio-export-{name}").start()
        return self.get(run_dir)

    def _run(self, run_dir: Path, quantize: str | None, state: dict) -> None:
        try:
            EXPORT_FORMATS.get("onnx")(run_dir, quantize=quantize, log=state["log"].append)
            state["state"] = "complete"
        except GraftkitError as err:
            state.update(state="failed", error=str(err))
        except Exception as err:  # an unexpected failure still ends as one line on the page
            state.update(state="failed", error=f"export: unexpected {type(err).__name__}: {err}")

    def get(self, run_dir: Path) -> dict:
        """The export's state (``none`` when never exported), its log lines, and the parity report on disk."""
        parity = run_dir / "onnx" / "parity.json"
        state = dict(self._state.get(run_dir.name) or {"state": "complete" if parity.is_file() else "none",
                                                       "log": [], "error": None})
        state["log"] = list(state["log"])
        state["report"] = read_json(parity) if parity.is_file() and state["state"] != "running" else None
        return state


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Services:
    """Local ``graftkit serve`` processes, one per run."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self._procs: dict[str, dict] = {}
        self._lock = threading.Lock()

    def start(self, run_dir: Path, backend: str = "torch", precision: str = "fp32") -> dict:
        """Start serving ``run_dir``; the reply holds the API key, which is not kept anywhere else."""
        if backend not in ("torch", "onnx") or precision not in ("fp32", "int8"):
            raise GraftkitError("backend: choose torch or onnx; precision: fp32 or int8")
        if backend == "onnx" and not (run_dir / "onnx" / "parity.json").is_file():
            raise GraftkitError(f"run {run_dir.name} has no ONNX export; export it first")
        name = run_dir.name
        with self._lock:
            if name in self._procs and self._procs[name]["proc"].poll() is None:
                raise GraftkitError(f"run {name} is served already at {self._procs[name]['url']}; stop it first")
            key, port = secrets.token_urlsafe(24), free_port()
            env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV and not k.startswith("GRAFTKIT_SERVE_")}
            env[SERVE_KEYS_ENV] = key
            args = [sys.executable, "-m", "graftkit", "serve", self.workspace.relative(run_dir), "--host", "127.0.0.1",
                    "--port", str(port), "--backend", backend, "--precision", precision, "--workers", "1"]
            log = self.workspace.state / "logs" / f"serve-{name}.log"
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"$ graftkit serve {' '.join(args[4:])}\n")
                fh.flush()
                proc = subprocess.Popen(args, cwd=self.workspace.root, env=env, stdin=subprocess.DEVNULL, stdout=fh,
                                        stderr=subprocess.STDOUT)
            self._procs[name] = {"proc": proc, "url": f"http://127.0.0.1:{port}", "backend": backend,
                                 "precision": precision, "started_at": time.time(), "log": log}
        return {**self._row(name), "api_key": key}

    def _row(self, name: str) -> dict:
        p = self._procs[name]
        code = p["proc"].poll()
        state = f"exited ({code})" if code is not None else "ready" if _ready(p["url"]) else "starting"
        return {"run": name, "url": p["url"], "state": state, "pid": p["proc"].pid, "backend": p["backend"],
                "precision": p["precision"], "started_at": p["started_at"]}

    def list(self) -> list[dict]:
        return [self._row(n) for n in sorted(self._procs)]

    def log_tail(self, name: str, lines: int = 20) -> str:
        log = self._procs[name]["log"] if name in self._procs else None
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]) if log else ""

    def stop(self, name: str) -> dict:
        with self._lock:
            if name not in self._procs:
                raise GraftkitError(f"run {name} is not served")
            _terminate(self._procs[name]["proc"])
            return self._row(name)

    def close(self) -> None:
        """On studio shutdown: stop every service."""
        with self._lock:
            for p in self._procs.values():
                _terminate(p["proc"])


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # uvicorn's graceful shutdown
        try:
            proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=0.5) as reply:
            return reply.status == 200
    except OSError:
        return False
