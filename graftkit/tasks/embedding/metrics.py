"""Retrieval metrics with sentence-transformers' InformationRetrievalEvaluator."""
from __future__ import annotations

from graftkit.tasks.embedding.preprocess import RetrievalSet

KS = (1, 5, 10)


def retrieval_scores(model, data: RetrievalSet, name: str = "eval", batch_size: int = 64) -> dict[str, float]:
    """Cosine-similarity retrieval metrics of ``model`` on ``data``.

    Returns:
        ``recall@k`` (share of a query's relevant documents in its top k, averaged), ``hit@k``
        (share of queries with at least one relevant document in the top k; equal to recall@k when
        each query has one relevant document), ``mrr@10``, ``ndcg@10`` and the counts.
    """
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    ev = InformationRetrievalEvaluator(
        data.queries, data.corpus, data.relevant, name=name, batch_size=batch_size, write_csv=False,
        mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=list(KS), precision_recall_at_k=list(KS), map_at_k=[10],
        score_functions=None, main_score_function="cosine")
    raw = ev(model)
    get = lambda metric: float(raw[f"{name}_cosine_{metric}"])  # noqa: E731
    out = {f"recall@{k}": get(f"recall@{k}") for k in KS}
    out.update({f"hit@{k}": get(f"accuracy@{k}") for k in KS})
    out.update({"mrr@10": get("mrr@10"), "ndcg@10": get("ndcg@10"),
                "queries": len(ev.queries_ids), "corpus": len(data.corpus)})
    return out
