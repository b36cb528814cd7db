"""Detection rules and the alert state machine: pure functions of numbers, unit-tested on their own.

A rule compares a topic's recent window with the trailing baseline just before it, either as a
ratio (window value / baseline value) or as a z-score against the baseline split into
window-sized buckets. The state machine turns a series of "fires / quiet" evaluations into
alert events: one surge opens one alert, which resolves after ``resolve_after`` quiet
evaluations and is followed by a cooldown in which no new alert opens.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from graftkit.apps.monitor.config import RuleConfig


@dataclass(frozen=True)
class RuleResult:
    """One evaluation: the window's value, the baseline's, the test score, window count, and whether it fires."""

    value: float
    baseline: float
    score: float
    count: int
    fires: bool


def _metric(n: np.ndarray, neg: np.ndarray, metric: str) -> np.ndarray:
    if metric == "negative_share":
        return np.where(n > 0, neg / np.maximum(n, 1), np.nan)
    return (neg if metric == "negative_volume" else n).astype(float)


def evaluate_rule(rule: RuleConfig, t: float, times: np.ndarray, negative: np.ndarray) -> RuleResult:
    """Evaluate ``rule`` at event time ``t`` on one topic's items (``times``, boolean ``negative``).

    The window is [t - window_s, t); the baseline [t - window_s - baseline_s, t - window_s).
    """
    w0 = t - rule.window_s
    in_w = (times >= w0) & (times < t)
    n_w, neg_w = int(in_w.sum()), int(negative[in_w].sum())
    value = float(_metric(np.array([n_w]), np.array([neg_w]), rule.metric)[0]) if n_w else 0.0
    buckets = max(1, int(round(rule.baseline_s / rule.window_s)))
    edges = w0 - rule.window_s * np.arange(buckets, -1, -1)  # bucket edges, oldest first, last edge = w0
    in_b = (times >= edges[0]) & (times < w0)
    idx = np.clip(np.searchsorted(edges, times[in_b], side="right") - 1, 0, buckets - 1)
    n_b = np.bincount(idx, minlength=buckets)
    neg_b = np.bincount(idx, weights=negative[in_b].astype(float), minlength=buckets)
    if rule.method == "ratio":
        if rule.metric == "negative_share":
            base = neg_b.sum() / n_b.sum() if n_b.sum() else 0.0
        else:
            base = float(_metric(n_b, neg_b, rule.metric).mean())
        base = max(float(base), rule.floor)
        score = value / base
    else:
        per = _metric(n_b, neg_b, rule.metric)
        per = per[~np.isnan(per)]
        base = float(per.mean()) if per.size else 0.0
        # a flat baseline has std 0; a floor keeps z finite and means "this many floors above normal"
        std = max(float(per.std(ddof=1)) if per.size > 1 else 0.0, rule.floor)
        score = (value - base) / std
    fires = n_w >= rule.min_count and int(n_b.sum()) >= rule.min_baseline_count and score >= rule.threshold
    return RuleResult(value, float(base), float(score), n_w, bool(fires))


@dataclass(frozen=True)
class AlertState:
    """Where one (topic, rule) stands: idle, open (with its alert and quiet streak) or cooldown (until a time)."""

    state: str = "idle"
    alert_id: int | None = None
    quiet: int = 0
    until: float | None = None


def step(st: AlertState, fires: bool, t: float, cooldown_s: float, resolve_after: int) -> tuple[AlertState, str | None]:
    """Advance the state machine by one evaluation at event time ``t``.

    Returns:
        The new state and the event: "open" (a new alert), "resolve" (the open alert ends) or None.
    """
    if st.state == "cooldown":
        if st.until is not None and t < st.until:
            return st, None
        st = AlertState()
    if st.state == "idle":
        return (AlertState("open", None, 0), "open") if fires else (st, None)
    if fires:
        return replace(st, quiet=0), None
    quiet = st.quiet + 1
    if quiet >= resolve_after:
        return AlertState("cooldown", st.alert_id, 0, t + cooldown_s), "resolve"
    return replace(st, quiet=quiet), None
