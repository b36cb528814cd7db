"""Detection rules (ratio and z-score on negative share, volume and negative volume) and the alert state machine."""
from __future__ import annotations

import numpy as np
import pytest

from graftkit.apps.monitor.config import RuleConfig
from graftkit.apps.monitor.detect import AlertState, evaluate_rule, step

H = 3600.0


def _stream(per_window: list[tuple[int, int]], window: float = H) -> tuple[np.ndarray, np.ndarray]:
    """Items spread evenly in consecutive windows; (count, negatives) per window, oldest first; ends at t=0."""
    times, neg = [], []
    for k, (n, m) in enumerate(per_window):
        start = -(len(per_window) - k) * window
        times += list(start + (np.arange(n) + 0.5) * window / max(n, 1))
        neg += [True] * m + [False] * (n - m)
    return np.array(times), np.array(neg, dtype=bool)


def share_rule(**kw) -> RuleConfig:
    base = dict(name="r", metric="negative_share", window_s=H, baseline_s=4 * H, method="ratio", threshold=2.0,
                min_count=5, min_baseline_count=10, floor=0.05)
    return RuleConfig(**{**base, **kw})


def test_negative_share_ratio_fires_at_threshold_only():
    times, neg = _stream([(20, 2)] * 4 + [(20, 8)])  # baseline share 0.10, window 0.40 → ratio 4
    res = evaluate_rule(share_rule(), 0.0, times, neg)
    assert res.fires and res.value == pytest.approx(0.4) and res.baseline == pytest.approx(0.1)
    assert res.score == pytest.approx(4.0)
    assert not evaluate_rule(share_rule(threshold=4.5), 0.0, times, neg).fires
    times, neg = _stream([(20, 2)] * 4 + [(20, 3)])  # ratio 1.5
    assert not evaluate_rule(share_rule(), 0.0, times, neg).fires


def test_window_excludes_items_at_or_after_t():
    times, neg = _stream([(20, 2)] * 4 + [(20, 8)])
    times = np.append(times, [0.0, 10.0])
    neg = np.append(neg, [True, True])
    assert evaluate_rule(share_rule(), 0.0, times, neg).count == 20


def test_min_count_and_min_baseline_block_firing():
    times, neg = _stream([(20, 2)] * 4 + [(4, 4)])  # share 1.0 but only 4 items in the window
    res = evaluate_rule(share_rule(), 0.0, times, neg)
    assert res.score > 2 and not res.fires
    assert evaluate_rule(share_rule(min_count=4), 0.0, times, neg).fires
    times, neg = _stream([(2, 0)] * 4 + [(20, 10)])  # 8 baseline items < min_baseline_count
    assert not evaluate_rule(share_rule(), 0.0, times, neg).fires
    assert evaluate_rule(share_rule(min_baseline_count=8), 0.0, times, neg).fires


def test_ratio_floor_caps_a_near_zero_baseline():
    times, neg = _stream([(20, 0)] * 4 + [(20, 2)])  # baseline share 0 → floor
    res = evaluate_rule(share_rule(floor=0.05), 0.0, times, neg)
    assert res.baseline == pytest.approx(0.05) and res.score == pytest.approx(2.0)
    assert not evaluate_rule(share_rule(floor=0.2), 0.0, times, neg).fires


def test_volume_zscore_uses_window_sized_baseline_buckets():
    rule = RuleConfig(name="v", metric="volume", window_s=H, baseline_s=4 * H, method="zscore", threshold=3.0,
                      min_count=1, min_baseline_count=1, floor=0.5)
    times, neg = _stream([(10, 0), (12, 0), (8, 0), (10, 0), (30, 0)])  # mean 10, sd 1.63
    res = evaluate_rule(rule, 0.0, times, neg)
    assert res.baseline == pytest.approx(10.0)
    assert res.score == pytest.approx((30 - 10) / np.std([10, 12, 8, 10], ddof=1))
    assert res.fires
    times, neg = _stream([(10, 0), (12, 0), (8, 0), (10, 0), (13, 0)])
    assert not evaluate_rule(rule, 0.0, times, neg).fires


def test_negative_volume_ratio_against_mean_per_window():
    rule = share_rule(metric="negative_volume", threshold=3.0, floor=1.0)
    times, neg = _stream([(20, 2)] * 4 + [(20, 7)])
    res = evaluate_rule(rule, 0.0, times, neg)
    assert res.value == 7 and res.baseline == pytest.approx(2.0) and res.fires
    times, neg = _stream([(20, 2)] * 4 + [(20, 5)])
    assert not evaluate_rule(rule, 0.0, times, neg).fires


def _run(fires: list[bool], cooldown: float = 3.0, resolve_after: int = 2):
    st, events = AlertState(), []
    for t, f in enumerate(fires):
        st, ev = step(st, f, float(t), cooldown, resolve_after)
        events.append(ev)
    return st, events


def test_one_surge_opens_one_alert_and_resolves_after_quiet_streak():
    st, events = _run([False, True, True, True, True, False, True, False, False, False])
    assert events.count("open") == 1 and events[1] == "open"
    assert events.count("resolve") == 1 and events[8] == "resolve"  # one quiet step (5) is not enough
    assert st.state == "cooldown" and st.until == 8 + 3.0


def test_cooldown_blocks_a_new_alert_until_it_ends():
    fires = [True, False, False] + [True] * 6
    _, events = _run(fires, cooldown=4.0)
    assert events[0] == "open" and events[2] == "resolve"
    assert events[3:6] == [None, None, None]  # t=3..5 < 2 + 4
    assert events[6] == "open"  # t=6: cooldown over, still firing → a new alert


def test_no_cooldown_reopens_at_next_fire():
    _, events = _run([True, False, True], cooldown=0.0, resolve_after=1)
    assert events == ["open", "resolve", "open"]
