"""Pre-tokenised datasets cached on disk by content hash (``train.cache_datasets``).

The key is a SHA-256 over everything the features depend on: the examples (text, pair, label and
the extra fields the reader kept), the tokenizer's full serialisation (vocabulary, added tokens,
normaliser), ``max_length``, the task's name, config and fitted label state. A second run on the
same data and settings loads the Arrow files instead of tokenising; any change gives a new key.
Entries are written to a sibling folder and renamed into place in one step, so a killed run leaves no
half entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

import datasets

from graftkit.data.dataset import Example


def default_cache_dir() -> Path:
    """``$GRAFTKIT_CACHE/datasets``, else ``$XDG_CACHE_HOME/graftkit/datasets`` (``~/.cache`` by default)."""
    if os.environ.get("GRAFTKIT_CACHE"):
        return Path(os.environ["GRAFTKIT_CACHE"]) / "datasets"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "graftkit" / "datasets"


def tokenizer_fingerprint(tokenizer) -> str:
    """SHA-256 of the tokenizer's serialisation (a fast tokenizer's JSON, else its vocab + settings)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(
        [sorted(tokenizer.get_vocab().items()), repr(tokenizer)], default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def examples_fingerprint(examples: Iterable[Example]) -> str:
    """SHA-256 over the content of the examples, in order (their file path and line are not content)."""
    digest = hashlib.sha256()
    for e in examples:
        record = [e.text, e.text_pair, e.label, e.extra]
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def dataset_key(examples: list[Example], tokenizer, max_length: int, task_parts: dict[str, Any]) -> str:
    """The cache key of one split's features."""
    parts = {"examples": examples_fingerprint(examples), "tokenizer": tokenizer_fingerprint(tokenizer),
             "max_length": max_length, "task": task_parts, "datasets": datasets.__version__, "format": 1}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:32]


def cached_dataset(key: str, build: Callable[[], datasets.Dataset], cache_dir: Path | None = None,
                   log: Callable[[str], None] = lambda m: None) -> datasets.Dataset:
    """The dataset stored under ``key``, or ``build()``'s result, stored there for the next run."""
    folder = (cache_dir or default_cache_dir()) / key
    if (folder / "dataset_info.json").is_file():
        log(f"tokenised data: cached copy {folder}")
        return datasets.load_from_disk(str(folder))
    ds = build()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{key}.{os.getpid()}")
    ds.save_to_disk(str(staging))
    try:
        os.rename(staging, folder)  # one atomic rename: a reader sees a complete entry or none
    except OSError:  # another run stored the same key meanwhile (or a stale half entry): keep that one
        shutil.rmtree(staging, ignore_errors=True)
        if not (folder / "dataset_info.json").is_file():
            return ds
    log(f"tokenised data: cached in {folder}")
    # read back the stored copy: memory-mapped Arrow, the same object a later run gets
    return datasets.load_from_disk(str(folder))
