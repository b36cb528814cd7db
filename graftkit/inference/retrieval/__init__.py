"""Retrieval over an embedding run: a nearest-neighbour index, search, re-ranking, and FAQ answering."""
from graftkit.inference.retrieval.answer import Answerer
from graftkit.inference.retrieval.index import Index, build_index, read_corpus

__all__ = ["Answerer", "Index", "build_index", "read_corpus"]
