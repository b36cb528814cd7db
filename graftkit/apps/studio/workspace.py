"""The studio's workspace folder: every path it reads or writes is resolved here and must stay inside it.

Layout: ``data/`` (uploaded or copied data files), ``configs/`` (YAML configs saved from the form), ``runs/``
(run folders; the configs write there), ``.studio/`` (the job database and one log per job).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import AsyncIterator

from graftkit.errors import GraftkitError
from graftkit.io import atomic_path

#: data files the studio accepts as uploads (the readers of graftkit/data/readers.py and the task formats)
DATA_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".json", ".parquet", ".pq", ".txt", ".conll")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


class PathRefused(GraftkitError):
    """A path that leaves the workspace (``..``, an absolute path, a link out of it)."""


class TooLarge(GraftkitError):
    """An upload, or a text to explain, over its size limit (413)."""


class Workspace:
    """A folder with data/, configs/, runs/ and .studio/ (created on open)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        if self.root.exists() and not self.root.is_dir():
            raise GraftkitError(f"studio workspace {self.root} is a file, not a folder")
        for sub in ("data", "configs", "runs", ".studio/logs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    data = property(lambda self: self.root / "data")
    configs = property(lambda self: self.root / "configs")
    runs = property(lambda self: self.root / "runs")
    state = property(lambda self: self.root / ".studio")

    def path(self, relative: str, must_exist: bool = True) -> Path:
        """``relative`` (a workspace-relative path) resolved; refused unless it stays inside the workspace.

        Raises:
            PathRefused: absolute, or leaves the workspace (``..`` or a symbolic link pointing out).
            GraftkitError: ``must_exist`` and nothing is there.
        """
        if not relative or Path(relative).is_absolute() or "\\" in relative or "\x00" in relative:
            raise PathRefused(f"path '{relative}' is refused: give a path relative to the workspace")
        resolved = (self.root / relative).resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise PathRefused(f"path '{relative}' is refused: it leaves the workspace")
        if must_exist and not resolved.exists():
            raise GraftkitError(f"'{relative}' does not exist in the workspace")
        return resolved

    def relative(self, path: Path) -> str:
        """``path`` (inside the workspace) as the workspace-relative string the API uses."""
        resolved = Path(path).resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise PathRefused(f"{path} is refused: it is outside the workspace {self.root}")
        return resolved.relative_to(self.root).as_posix()

    def data_files(self) -> list[str]:
        """Workspace-relative paths of the data files under data/ (sorted)."""
        return sorted(self.relative(p) for p in self.data.rglob("*")
                      if p.is_file() and p.suffix.lower() in DATA_SUFFIXES and not p.name.startswith("."))

    async def save_upload(self, name: str, chunks: AsyncIterator[bytes], limit: int) -> str:
        """Write an uploaded file to data/``name`` atomically, refusing it once it passes ``limit`` bytes.

        Raises:
            PathRefused: a name that is not a plain file name with a data suffix. TooLarge: over ``limit``.
        """
        if not _NAME.match(name or "") or Path(name).suffix.lower() not in DATA_SUFFIXES:
            raise PathRefused(f"upload name '{name}' is refused: use letters, digits, '.', '_' or '-' and one "
                              f"of the suffixes {', '.join(DATA_SUFFIXES)}")
        target = self.path(f"data/{name}", must_exist=False)
        size = 0
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"upload '{name}' is over the limit of {limit_text(limit)}")
                fh.write(chunk)
        return self.relative(target)


def limit_text(limit: int) -> str:
    return f"{limit / 2**20:.0f} MiB" if limit >= 2**20 else f"{limit} bytes"
