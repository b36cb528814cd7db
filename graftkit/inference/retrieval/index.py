"""A corpus embedded by an embedding run, stored beside the run, searched exactly (cosine, top-k).

Search is sentence-transformers' ``semantic_search``: an exact, chunked matrix product, which is
all a corpus of FAQ answers or catalogue items needs (no approximate-index dependency).

Layout (no pickles: vectors in safetensors, everything else JSON)::

    RUN/index/<name>/vectors.safetensors   "embeddings": (n, dim) float32, L2-normalised
    RUN/index/<name>/entries.json          [{"id", "text", ...other corpus columns}] in vector order
    RUN/index/<name>/meta.json             corpus file, columns, count, dim, similarity
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from safetensors.numpy import save_file
from safetensors.torch import load_file
from sentence_transformers.util import semantic_search

from graftkit.data.readers import read_rows
from graftkit.errors import DataError, RunFolderError
from graftkit.inference.base import task_class_of
from graftkit.inference.embedder import Embedder
from graftkit.io import atomic_path, publish_dir, read_json, write_json
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.matrix import require


def read_corpus(path: str | Path, id_column: str | None = "id", text_column: str = "text",
                encoding: str = "utf-8") -> list[dict]:
    """Corpus rows as ``{"id", "text", **other columns}``; ids default to line numbers when ``id_column`` is None.

    Raises:
        DataError: missing column, empty text or a duplicate id (names file, line and field).
    """
    rows = read_rows(path, "auto", encoding)
    if not rows:
        raise DataError(str(path), "corpus has no rows")
    seen: dict[str, int] = {}
    entries = []
    for row in rows:
        for col in (c for c in (id_column, text_column) if c):
            if col not in row.values:
                raise DataError(row.path, f"missing column '{col}' (columns: {', '.join(map(str, row.values))}); "
                                "set --id-column / --text-column", line=row.line)
        rid = str(row.values[id_column]).strip() if id_column else str(row.line)
        if not rid or rid == "None":
            raise DataError(row.path, "empty id", line=row.line, field=id_column)
        if rid in seen:
            raise DataError(row.path, f"duplicate id {rid!r} (first on line {seen[rid]}); ids must be unique",
                            line=row.line, field=id_column)
        seen[rid] = row.line
        text = row.values[text_column]
        if text is None or not str(text).strip():
            raise DataError(row.path, "empty text", line=row.line, field=text_column)
        extra = {k: v for k, v in row.values.items() if k not in (id_column, text_column)}
        entries.append({**extra, "id": rid, "text": str(text)})
    return entries


def embedding_run(run_dir: str | Path) -> RunFolder:
    """The run folder, checked to be a finished run whose task embeds.

    Raises:
        UnsupportedError: the run's task does not embed (one line naming what it supports).
    """
    run = RunFolder(run_dir).require_model()
    require(task_class_of(run), "index")
    return run


def build_index(run_dir: str | Path, corpus: str | Path, id_column: str | None = "id", text_column: str = "text",
                name: str = "default", batch_size: int = 64, encoding: str = "utf-8") -> Path:
    """Embed every corpus entry with the run's model and store the index in ``RUN/index/<name>``."""
    run = embedding_run(run_dir)
    entries = read_corpus(corpus, id_column, text_column, encoding)
    vectors = Embedder(run.path).vectors([e["text"] for e in entries], batch_size)
    target = run.path / "index" / name
    staging = run.path / "index" / f".staging-{name}"
    staging.mkdir(parents=True, exist_ok=True)
    with atomic_path(staging / "vectors.safetensors") as tmp:
        save_file({"embeddings": vectors}, str(tmp))
    write_json(staging / "entries.json", entries)
    write_json(staging / "meta.json", {"corpus": str(corpus), "id_column": id_column, "text_column": text_column,
                                       "count": len(entries), "dim": int(vectors.shape[1]), "similarity": "cosine",
                                       "search": "exact cosine (sentence_transformers.util.semantic_search)"})
    publish_dir(staging, target)
    return target


class Index:
    """A built index loaded for search; the run's encoder embeds the queries.

    Args:
        run_dir: the embedding run the index was built with.
        name: the index name given to ``build_index``.
    """

    def __init__(self, run_dir: str | Path, name: str = "default"):
        self.run = embedding_run(run_dir)
        self.path = self.run.path / "index" / name
        if not (self.path / "meta.json").is_file():
            raise RunFolderError(f"{self.path}: no index named '{name}'; build it with "
                                 f"`graftkit index {self.run.path} --corpus FILE`")
        self.meta = read_json(self.path / "meta.json")
        self.entries: list[dict] = read_json(self.path / "entries.json")
        self.vectors = load_file(str(self.path / "vectors.safetensors"))["embeddings"]
        self.embedder = Embedder(self.run.path)

    def __len__(self) -> int:
        return len(self.entries)

    def search(self, queries: Sequence[str], k: int = 5) -> list[list[dict]]:
        """Top-``k`` entries per query, best first, each with its cosine ``score`` and ``rank``."""
        k = max(1, min(k, len(self.entries)))
        found = semantic_search(torch.from_numpy(self.embedder.vectors(queries)), self.vectors, top_k=k)
        return [[{**self.entries[hit["corpus_id"]], "score": float(hit["score"]), "rank": r + 1}
                 for r, hit in enumerate(hits)] for hits in found]
