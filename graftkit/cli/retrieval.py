"""CLI commands `index`, `search` and `answer` (registered in graftkit.cli)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer


def index_cmd(
    run_dir: Path = typer.Argument(..., help="A finished embedding run (task.type: embedding)."),
    corpus: Path = typer.Option(..., "--corpus", "-c", help="Corpus file (.csv/.tsv/.jsonl/.parquet), one entry per row."),
    text_column: str = typer.Option("text", help="Column holding the text to embed."),
    id_column: Optional[str] = typer.Option("id", help="Column of unique ids ('' = use line numbers)."),
    name: str = typer.Option("default", help="Index name (several indexes may live beside one run)."),
    batch_size: int = typer.Option(64, help="Embedding batch size."),
):
    """Embed a corpus with an embedding run and store a nearest-neighbour index beside the run."""
    from graftkit.inference.retrieval.index import build_index

    path = build_index(run_dir, corpus, id_column or None, text_column, name, batch_size)
    meta = json.loads((path / "meta.json").read_text())
    typer.echo(f"indexed {meta['count']} entries ({meta['dim']}-d) → {path}")


def _reranker(run: Optional[Path], positive_label: Optional[str]):
    if run is None:
        return None
    from graftkit.inference.retrieval.rerank import CrossEncoderReranker
    from graftkit.inference.runs import open_run

    return CrossEncoderReranker(open_run(run), positive_label)


def search_cmd(
    run_dir: Path = typer.Argument(..., help="The embedding run the index was built with."),
    queries: List[str] = typer.Argument(..., help="One or more queries."),
    k: int = typer.Option(5, "--top-k", "-k", help="Entries returned per query."),
    name: str = typer.Option("default", help="Index name."),
    rerank: Optional[Path] = typer.Option(None, help="Pair-classification run that re-ranks the top k."),
    positive_label: Optional[str] = typer.Option(None, help="The re-ranker's label meaning 'matches'."),
):
    """Top-k corpus entries for each query, with cosine scores (JSON Lines on stdout)."""
    from graftkit.inference.retrieval.index import Index

    index = Index(run_dir, name)
    reranker = _reranker(rerank, positive_label)
    for q, hits in zip(queries, index.search(queries, k)):
        if reranker is not None:
            hits = reranker.rerank(q, hits)
        sys.stdout.write(json.dumps({"query": q, "hits": hits}, ensure_ascii=False) + "\n")


def answer_cmd(
    questions: List[str] = typer.Argument(..., help="Customer questions."),
    intent_run: Path = typer.Option(..., "--intent-run", help="Intent classification run."),
    retriever: Path = typer.Option(..., "--retriever", help="Embedding run with an FAQ index (graftkit index)."),
    oos_threshold: Optional[float] = typer.Option(None, help="An intent run with an out-of-scope detector: score "
                                                  "above which a question is out of scope (default: the run's own)."),
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="An intent run without a detector: "
                                              "minimum intent confidence, below it out of scope (default 0.5)."),
    min_score: Optional[float] = typer.Option(None, help="Minimum cosine similarity of the best FAQ entry; "
                                              "below it: out of scope."),
    k: int = typer.Option(3, "--top-k", "-k", help="FAQ entries per answer."),
    name: str = typer.Option("default", help="Index name."),
    rerank: Optional[Path] = typer.Option(None, help="Pair-classification run that re-ranks the FAQ entries."),
    positive_label: Optional[str] = typer.Option(None, help="The re-ranker's label meaning 'matches'."),
):
    """Answer customer questions: intent and best FAQ entries, or 'out of scope' when the intent run's detector
    flags the question (a run without a detector: intent confidence below --threshold)."""
    from graftkit.inference.retrieval.answer import Answerer
    from graftkit.inference.retrieval.index import Index
    from graftkit.inference.runs import open_run

    answerer = Answerer(open_run(intent_run), Index(retriever, name), threshold, k, _reranker(rerank, positive_label),
                        min_score, oos_threshold)
    for q in questions:
        sys.stdout.write(json.dumps(answerer(q), ensure_ascii=False) + "\n")
