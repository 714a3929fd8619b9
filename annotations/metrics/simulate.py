"""The generative model of design.md: Plackett-Luce rankings with merged ties, annotator
reliability and position bias, on balanced screens; and worths solved from stated Win@1 values.

Model. System s has log-worth w_s. Annotator j (reliability a_j > 0) ranks the k systems on a
screen by Plackett-Luce on a_j * w_s + b_p, where b_p is the position bias of display slot p
(sampled by the Gumbel-max trick); then each pair of adjacent places is merged into one tie
group with probability t. Reliabilities are a_j = exp(sd * z_j), z_j standard normal (median
1; sd = 0 means every annotator has a_j = 1). Screens come from `screens.balanced_screens`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np

from .screens import balanced_screens
from .tables import Annotation

_HERMITE_NODES = 15  # Gauss-Hermite nodes for averaging Win@1 over the reliability spread
_MAX_SUBSETS = 2000  # subsets averaged exactly in expected_win1; beyond this, a fixed sample


def system_names(n_systems: int) -> list[str]:
    """The default system names of simulated studies: s0, s1, ..."""
    return [f"s{i}" for i in range(n_systems)]


# ---------------------------------------------------------------------------------------------
# Expected Win@1 under the model (exact, for solving worths)


def _top_group_sizes(k: int, tie_rate: float) -> np.ndarray:
    """P(the first tie group has g = 1..k members): g - 1 merges in a row, then none."""
    g = np.arange(1, k + 1)
    p = tie_rate ** (g - 1) * (1 - tie_rate)
    p[-1] = tie_rate ** (k - 1)
    return p


def _place_probabilities(v: np.ndarray) -> np.ndarray:
    """(k, k) P(system i at place j) under Plackett-Luce with log-worths v, by a dynamic
    programme over the set of systems already placed (2^k states)."""
    k = len(v)
    e = np.exp(v - v.max())
    n_states = 1 << k
    members = (np.arange(n_states)[:, None] >> np.arange(k)) & 1  # (states, k)
    rest = (1 - members) @ e  # total worth not yet placed
    size = members.sum(1)
    prob = np.zeros(n_states)
    prob[0] = 1.0
    place = np.zeros((k, k))
    for j in range(k):
        states = np.flatnonzero(size == j)
        # From each state with j placed, system i (not yet placed) takes place j + 1.
        # Worths so far apart that the rest underflows to 0 give NaN, which the callers refuse
        # ("an effect the model cannot give"), not a warning.
        with np.errstate(invalid="ignore", divide="ignore"):
            step = prob[states, None] * (1 - members[states]) * e[None, :] / rest[states, None]
        place[:, j] = step.sum(0)
        if j + 1 < k:
            nxt = states[:, None] | (1 << np.arange(k))[None, :]
            np.add.at(prob, nxt.ravel(), step.ravel())
    return place


def _screen_credit(v: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Expected Win@1 credit of each system on one screen: sum_g P(G = g) / g * P(top g)."""
    top = np.cumsum(_place_probabilities(v), axis=1)  # (k, k): P(system in the top g)
    return top @ (sizes / np.arange(1, len(v) + 1))


def expected_win1(
    log_worths: Sequence[float],
    k: int | None = None,
    *,
    tie_rate: float = 0.0,
    reliability_sd: float = 0.0,
) -> np.ndarray:
    """Expected Win@1 of each system under the model, exactly (no position bias: with slots
    balanced it shifts no one), averaged over k-subsets (all of them, or a fixed sample of
    `_MAX_SUBSETS` when there are more) and over the reliability spread (Gauss-Hermite)."""
    w = np.asarray(log_worths, np.float64)
    n_sys = len(w)
    k = n_sys if k is None else min(k, n_sys)
    if k > 16:
        raise ValueError("expected_win1 is exact and needs k <= 16")
    sizes = _top_group_sizes(k, tie_rate)
    if reliability_sd > 0:
        z, wt = np.polynomial.hermite_e.hermegauss(_HERMITE_NODES)
        scales, weights = np.exp(reliability_sd * z), wt / wt.sum()
    else:
        scales, weights = np.ones(1), np.ones(1)
    subsets = _subsets(n_sys, k)
    total = np.zeros(n_sys)
    count = np.zeros(n_sys)
    for sub in subsets:
        credit = sum(wt * _screen_credit(a * w[sub], sizes) for a, wt in zip(scales, weights))
        total[sub] += credit
        count[sub] += 1
    return total / count


def _subsets(n_sys: int, k: int) -> np.ndarray:
    from math import comb

    if comb(n_sys, k) <= _MAX_SUBSETS:
        return np.array(list(combinations(range(n_sys), k)))
    rng = np.random.default_rng(0)
    return np.sort(np.argsort(rng.random((_MAX_SUBSETS, n_sys)), axis=1)[:, :k], axis=1)


def worths_for_win1(
    target_win1: Sequence[float],
    k: int | None = None,
    *,
    n_systems: int | None = None,
    tie_rate: float = 0.0,
    reliability_sd: float = 0.0,
    tol: float = 1e-9,
) -> np.ndarray:
    """Log-worths (mean 0) under which the systems' expected Win@1 equals the targets.

    `target_win1` lists the Win@1 of the first systems (e.g. [0.443, 0.163]); with
    `n_systems` larger, the remaining systems share what is left equally. What is left is
    n_systems / k - sum(targets): with k per screen the Win@1 values sum to K / k (to 1 when
    every screen shows everyone). Solved by the fixed point w <- w + log(target / expected),
    which is exact in one step without ties, reliability spread or subsets.
    """
    given = np.asarray(target_win1, np.float64)
    n_sys = len(given) if n_systems is None else n_systems
    if n_sys < len(given) or n_sys < 2:
        raise ValueError("need at least two systems, and no more targets than systems")
    k = n_sys if k is None else min(k, n_sys)
    left = n_sys / k - given.sum()
    n_rest = n_sys - len(given)
    if n_rest:
        target = np.concatenate([given, np.full(n_rest, left / n_rest)])
    elif abs(left) > 1e-6:
        raise ValueError(f"Win@1 targets of all systems must sum to K/k = {n_sys / k:.4g}")
    else:
        target = given
    if (target <= 0).any() or (target >= 1).any():
        raise ValueError("every system's Win@1 target must lie strictly between 0 and 1")
    w = np.log(target)
    for _ in range(500):
        current = expected_win1(w, k, tie_rate=tie_rate, reliability_sd=reliability_sd)
        step = np.log(target) - np.log(current)
        w = w + step
        w -= w.mean()
        if np.abs(step).max() < tol:
            return w
    raise ValueError("no worths give these Win@1 targets under this tie rate and reliability "
                     "(a tie rate this high caps the best system's Win@1)")


# ---------------------------------------------------------------------------------------------
# Drawing rankings, vectorised over simulated studies


def _annotator_of(n_items: int, per_item: int, n_annotators: int) -> np.ndarray:
    """Ranking (item i, j-th of its r) goes to annotator (i * r + j) mod J: r distinct per item
    when r <= J, every annotator about equally busy."""
    return np.arange(n_items * per_item) % n_annotators


def _draw(
    rng: np.random.Generator,
    w: np.ndarray,
    screens: np.ndarray,
    reliability: np.ndarray,
    annotator: np.ndarray,
    bias: np.ndarray,
    tie_rate: float,
) -> tuple[np.ndarray, np.ndarray]:
    """For S studies at once: `ranked` (S, M, k) system indices best first and `merged`
    (S, M, k - 1) True where place p + 1 is tied with place p.

    `screens` (M, k) system in each slot; `reliability` (S, J); `annotator` (M,).
    """
    n_studies = reliability.shape[0]
    m, k = screens.shape
    value = reliability[:, annotator, None] * w[screens][None] + bias[None, None, :k]
    value = value + rng.gumbel(size=(n_studies, m, k))
    slots = np.argsort(-value, axis=2)
    ranked = np.take_along_axis(np.broadcast_to(screens, (n_studies, m, k)), slots, axis=2)
    merged = rng.random((n_studies, m, k - 1)) < tie_rate
    return ranked, merged


def _top_credit(ranked: np.ndarray, merged: np.ndarray, n_sys: int) -> np.ndarray:
    """(S, M, K) Win@1 credit: 1/g for each member of the first tie group, else 0."""
    n_studies, m, k = ranked.shape
    g = 1 + np.cumprod(merged, axis=2).sum(2)  # (S, M)
    in_top = np.arange(k)[None, None, :] < g[:, :, None]
    credit = np.zeros((n_studies, m, n_sys))
    np.put_along_axis(credit, ranked, in_top / g[:, :, None], axis=2)
    return credit


def _reliabilities(rng, n_studies: int, n_annotators: int, sd: float) -> np.ndarray:
    if sd <= 0:
        return np.ones((n_studies, n_annotators))
    return np.exp(sd * rng.standard_normal((n_studies, n_annotators)))


def simulate_study(
    log_worths: Sequence[float],
    n_items: int,
    per_item: int,
    *,
    k: int | None = None,
    systems: Sequence[str] | None = None,
    tie_rate: float = 0.0,
    reliability_sd: float = 0.0,
    reliability: Sequence[float] | None = None,
    n_annotators: int | None = None,
    position_bias: Sequence[float] | None = None,
    seconds: float | None = None,
    seed: int = 0,
) -> list[Annotation]:
    """One simulated study: `n_items` items, each ranked by `per_item` distinct annotators on
    balanced screens of k systems, as `Annotation`s with display orders that `leaderboard()`
    analyses like real data.

    `reliability` gives each annotator's a_j explicitly (its length is the number of
    annotators); otherwise `n_annotators` (default max(per_item, 20)) annotators draw
    a_j = exp(reliability_sd * z). `position_bias` b_p adds to the worth of slot p.
    """
    w = np.asarray(log_worths, np.float64)
    n_sys = len(w)
    names = list(systems) if systems is not None else system_names(n_sys)
    k = n_sys if k is None else min(k, n_sys)
    rng = np.random.default_rng(seed)
    if reliability is not None:
        rel = np.asarray(reliability, np.float64)[None]
    else:
        rel = _reliabilities(rng, 1, n_annotators or max(per_item, 20), reliability_sd)
    if rel.shape[1] < per_item:
        raise ValueError("each item needs per_item distinct annotators")
    bias = np.zeros(k) if position_bias is None else np.asarray(position_bias, np.float64)
    screens = _screen_matrix(n_sys, k, n_items * per_item, seed)
    annotator = _annotator_of(n_items, per_item, rel.shape[1])
    ranked, merged = _draw(rng, w, screens, rel, annotator, bias, tie_rate)
    out = []
    for row in range(n_items * per_item):
        groups = [[names[ranked[0, row, 0]]]]
        for p in range(1, k):
            if merged[0, row, p - 1]:
                groups[-1].append(names[ranked[0, row, p]])
            else:
                groups.append([names[ranked[0, row, p]]])
        out.append(Annotation(
            item=f"i{row // per_item}",
            annotator=f"a{annotator[row]}",
            ranking=tuple(tuple(g) for g in groups),
            display_order=tuple(names[s] for s in screens[row]),
            seconds=seconds,
        ))
    return out


def _screen_matrix(n_sys: int, k: int, n_screens: int, seed: int) -> np.ndarray:
    """(n_screens, k) system indices per slot from the balanced design."""
    names = system_names(n_sys)
    index = {name: i for i, name in enumerate(names)}
    screens = balanced_screens(names, k, n_screens, seed=seed)
    return np.array([[index[name] for name in s] for s in screens], np.int64).reshape(
        n_screens, k)


# ---------------------------------------------------------------------------------------------
# Plackett-Luce with tie parameters (Turner et al. 2020), the model `ties` fits


def simulate_pl_ties(
    log_worths: Sequence[float],
    tie_parameters: Mapping[int, float],
    n_rankings: int,
    *,
    k: int | None = None,
    per_item: int = 1,
    systems: Sequence[str] | None = None,
    seed: int = 0,
) -> list[Annotation]:
    """Rankings drawn from Plackett-Luce with tie parameters, as `ties.plackett_luce_ties` fits.

    Each ranking shows k systems (all by default; otherwise a uniformly random k-subset in a
    random display order) and is built group by group: among the systems not yet placed,
    group S (of size 1 or an order in `tie_parameters`, {order: delta_order}) is chosen with
    probability proportional to delta_|S| * exp(mean log-worth of S). Item of ranking r is
    r // per_item; 20 annotators take turns.
    """
    w = np.asarray(log_worths, np.float64)
    n_sys = len(w)
    names = list(systems) if systems is not None else system_names(n_sys)
    k = n_sys if k is None else min(k, n_sys)
    deltas = {1: 1.0, **{int(d): float(v) for d, v in tie_parameters.items()}}
    if min(deltas) < 1 or any(v < 0 for v in deltas.values()):
        raise ValueError("tie orders are >= 2 with delta >= 0")
    bits = 1 << np.arange(n_sys, dtype=np.int64)
    groups = [c for d in sorted(deltas) if d <= k for c in combinations(range(n_sys), d)]
    codes = np.array([bits[list(c)].sum() for c in groups], np.int64)
    weight = np.array([deltas[len(c)] * np.exp(w[list(c)].mean()) for c in groups])
    rng = np.random.default_rng(seed)
    display = np.argsort(rng.random((n_rankings, n_sys)), axis=1)[:, :k]
    left = bits[display].sum(1)
    chosen = []  # per stage: the group code chosen by each ranking (0 once all are placed)
    while left.any():
        allowed = ((codes[None, :] & ~left[:, None]) == 0) & (left[:, None] != 0)
        cum = np.cumsum(allowed * weight[None, :], axis=1)
        u = rng.random(n_rankings) * cum[:, -1]
        pick = np.minimum((cum <= u[:, None]).sum(1), len(codes) - 1)
        code = np.where(left != 0, codes[pick], 0)
        chosen.append(code)
        left = left & ~code
    out = []
    for r in range(n_rankings):
        ranking = tuple(tuple(names[s] for s in range(n_sys) if stage[r] >> s & 1)
                        for stage in chosen if stage[r])
        out.append(Annotation(item=f"i{r // per_item}", annotator=f"a{r % 20}",
                              ranking=ranking,
                              display_order=tuple(names[s] for s in display[r])))
    return out
