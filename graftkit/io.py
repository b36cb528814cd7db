"""Atomic writes: a reader never sees a half-written file or run folder, even if the process is killed.

A whole folder (a run, a merged model, an ensemble) is built in a sibling ``staging_path`` and published by
rename (``publish_run``); ``sole_writer`` makes a second writer of the same folder fail with a clear error, and
``locked_update`` serialises read-modify-write updates of one file (both through ``filelock``, which works on
every platform).
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from filelock import FileLock, Timeout

from graftkit.errors import RunFolderError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_jsonable) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=_jsonable) + "\n" for r in rows))


def write_csv(path: str | Path, header: list[str], rows: Iterable[list]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    write_text(path, buf.getvalue())


def allow_large_csv_fields() -> None:
    """Lift the csv module's 128 KiB field limit to the C long maximum, for good.

    The limit is process-wide; lowering it back after a read would break another thread's (or a paused
    generator's) read of a large cell, so it is only ever raised, to one value, and never restored.
    """
    largest = min(sys.maxsize, 2**31 - 1)  # the C long limit on every platform
    if csv.field_size_limit() < largest:
        csv.field_size_limit(largest)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _jsonable(x: Any) -> Any:
    if hasattr(x, "item"):  # numpy / torch scalars
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, (set, tuple)):
        return list(x)
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def publish_dir(staging: Path, target: Path) -> None:
    """Move every file of ``staging`` into ``target`` with atomic renames, then drop ``staging``."""
    target.mkdir(parents=True, exist_ok=True)
    for src in sorted(staging.rglob("*")):
        if src.is_file():
            dst = target / src.relative_to(staging)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    shutil.rmtree(staging, ignore_errors=True)


def staging_path(target: str | Path) -> Path:
    """The sibling folder in which ``target`` is built before ``publish_run`` renames it into place (a sibling,
    so the rename stays on one filesystem and is atomic)."""
    target = Path(target)
    return target.with_name(f".{target.name}.partial")


@contextmanager
def sole_writer(target: str | Path) -> Iterator[None]:
    """Hold the lock ``.<name>.lock`` next to ``target`` while the block runs; a second writer (another process,
    or another call in this one) gets a RunFolderError at once.

    The lock file stays after release (filelock's design: waiters must lock the same file, and deleting it
    would let two writers lock two different files); it is empty and hidden.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    path = target.with_name(f".{target.name}.lock")
    message = f"another process is writing {target} right now (it holds {path}); wait for it to finish"
    with _held(FileLock(path, timeout=0), message):
        yield


@contextmanager
def locked_update(path: str | Path, timeout_s: float = 60.0) -> Iterator[None]:
    """Hold ``.<name>.lock`` next to ``path`` for a read-modify-write of it, waiting for another holder.

    Raises:
        RunFolderError: another process held it for ``timeout_s``.
    """
    path = Path(path)
    lock = path.with_name(f".{path.name}.lock")
    message = f"{path}: another process held {lock} for {timeout_s:g}s while updating it; try again"
    with _held(FileLock(lock, timeout=timeout_s), message):
        yield


@contextmanager
def _held(lock: FileLock, message: str) -> Iterator[None]:
    try:
        lock.acquire()
    except Timeout:
        raise RunFolderError(message) from None
    try:
        yield
    finally:
        lock.release()


def _fsync_tree(folder: Path) -> None:
    for f in folder.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())


def publish_run(staging: str | Path, target: str | Path) -> None:
    """Replace ``target`` by the complete folder ``staging``: its files are fsynced, then renames swap it in,
    and the old result is deleted only after the new one is in place. Call it holding ``sole_writer(target)``."""
    staging, target = Path(staging), Path(target)
    _fsync_tree(staging)
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the renames themselves are durable
    finally:
        os.close(fd)
    shutil.rmtree(old, ignore_errors=True)
