"""Adaptive allocation (design.md §4): which k of the K systems to show on the next screen so
the researcher's interval shrinks fastest, with each screen's exact selection probability, and
the inverse-probability-weighted Win@1 that stays unbiased for the uniform design.

Target. theta_s = Win@1 of system s when every screen is a uniformly random k-subset of the K
systems: the mean, over the C(K-1, k-1) subsets S that contain s, of mu_s(S), the expected
Win@1 credit (1/g when s is in a first tie group of g) of s on S. Under uniform screens the
leaderboard's Win@1 (per annotation) converges to it.

Design. Lease t shows subset S with probability pi_t(S), fixed by the rankings before it:

    pi_t(S) = eps / C + (1 - eps) q_t(S),    C = C(K, k),  eps = floor * K / k,

so every subset keeps probability >= eps / C (every weight below is at most 1 / eps) and
every system is on the screen with probability >= eps * k / K = floor at every lease. q_t is
a Neyman allocation for the weighted estimate of the #1-#2 Win@1 difference: for a pair (a, b),
v_ab(S) is the expected square of S's contribution (c_a - theta_a) 1[a in S] - (c_b - theta_b)
1[b in S] to that estimate's error (0 for subsets with neither), and minimising
sum_S v(S) / pi(S), the variance of the weighted difference, over distributions gives pi
proportional to sqrt(v). Which pair is #1-#2 is itself uncertain, so v mixes the pairs of the
current top three x >= y >= z: v = (1 - p_zy) v_xy + (p_zy - p_zx) v_xz + p_zx v_yz, p_zy and p_zx
the normal-approximation chances that z is truly above y and above x; a researcher who names
the pair gets v_ab alone. q_t(S) is proportional to sqrt(v(S)). v is computed from smoothed
current estimates, theta~_s = (weighted credit + 1/k) / (weighted shows + 1), their sandwich
variances (plus 1/4 of a pseudo-screen), and a Luce choice on S with worths theta~ (P(s first on
S) = theta~_s / sum_{u in S} theta~_u): a rough model, which only steers; validity rests on the
exact pi, not on the model. Two exceptions: while some system has been shown fewer than
`warmup` times q_t = 1/C; and when a system's share of screens would fall below `floor` unless
it is shown now (shown_s < floor * (n + 1)), q_t is uniform over the subsets holding the (at
most k most behind of the) systems so due. So the realised share stays at the floor up to the
rare eps-draws that miss a due system.

Estimate. Screen t gets weight w_t = (1/C) / pi_t(S_t) (1 under uniform screens). The Hajek
estimate theta^_s = sum_t w_t 1[s in S_t] c_ts / sum_t w_t 1[s in S_t] is the leaderboard's
Win@1 when screens are uniform. xi_ts = w_t 1[s in S_t] (c_ts - theta_s) has conditional mean
exactly 0 given the past, whatever the adaptive rule (E[w 1[s in S] c] = (k/K) theta_s =
theta_s E[w 1[s in S]]), so sum_t xi_t is a martingale; with the weights bounded by 1/eps, the
martingale CLT gives normal intervals with the sandwich covariance
cov(theta^_s, theta^_u) = sum_t xi^_ts xi^_tu / (W_s W_u) x n / (n - 1), with
W_s = sum_t w_t 1[s in S_t].
Per system the interval inverts the self-normalised statistic with the variance taken at the
candidate theta (a score interval, Wilson's without weights or ties), which covers small Win@1
more evenly than estimate +- z SE; the difference uses estimate +- z SE
(Hadad et al., "Confidence intervals for policy evaluation in adaptive experiments", PNAS
2021, discuss the conditions; the floor keeps the weights bounded). All sums are kept as
per-system and per-pair sufficient statistics, so no screen has to be stored. The unit is the
ranking: if one item's rankings share item effects, cluster by item (not done here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from math import comb
from typing import Any

import numpy as np

_Z = {0.05: 1.959963984540054}
_MAX_SUBSETS = 200_000  # C(K, k) enumerated exactly; beyond this choose_screen refuses
METHOD = ("Neyman allocation for the inverse-probability-weighted Win@1 difference of #1 and "
          "#2, mixed with uniform k-subsets by the floor share; Hajek estimate with "
          "martingale sandwich intervals, unbiased for Win@1 under uniform screens")


@lru_cache(maxsize=16)
def _subsets(n_sys: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """All k-subsets of range(n_sys) in lexicographic order (C, k), and membership (C, K)."""
    if not 1 <= k < n_sys:
        raise ValueError("adaptive screens need 1 <= k < K (with k >= K every screen is full)")
    if comb(n_sys, k) > _MAX_SUBSETS:
        raise ValueError(f"C({n_sys}, {k}) subsets is more than {_MAX_SUBSETS}")
    subsets = np.array(list(combinations(range(n_sys), k)), np.int64)
    member = np.zeros((len(subsets), n_sys), bool)
    member[np.arange(len(subsets))[:, None], subsets] = True
    subsets.flags.writeable = False
    member.flags.writeable = False
    return subsets, member


@dataclass(eq=False)
class AdaptiveState:
    """Running sufficient statistics of one criterion's rankings, for `choose_screen` and
    `ipw_win1`. Arrays are indexed by `systems`; w is a screen's weight (1/C) / pi.

    shown, credit: unweighted screens showing s and Win@1 credit of s; w_shown, w_credit:
    the same weighted by w; pair: unweighted screens showing s and u together (diagonal =
    shown); m0, m1, m2: sums of w^2 1[s] 1[u], w^2 1[s] 1[u] c_s and w^2 1[s] 1[u] c_s c_u (the
    sandwich variance); max_weight: the largest w so far.
    """

    systems: tuple[str, ...]
    n: int = 0
    shown: np.ndarray = field(default=None)  # type: ignore[assignment]
    credit: np.ndarray = field(default=None)  # type: ignore[assignment]
    w_shown: np.ndarray = field(default=None)  # type: ignore[assignment]
    w_credit: np.ndarray = field(default=None)  # type: ignore[assignment]
    pair: np.ndarray = field(default=None)  # type: ignore[assignment]
    m0: np.ndarray = field(default=None)  # type: ignore[assignment]
    m1: np.ndarray = field(default=None)  # type: ignore[assignment]
    m2: np.ndarray = field(default=None)  # type: ignore[assignment]
    max_weight: float = 0.0

    def __post_init__(self) -> None:
        self.systems = tuple(self.systems)
        n_sys = len(self.systems)
        if n_sys < 2 or len(set(self.systems)) != n_sys:
            raise ValueError("need at least two distinct systems")
        for name in ("shown", "credit", "w_shown", "w_credit"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(n_sys))
        for name in ("pair", "m0", "m1", "m2"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros((n_sys, n_sys)))
        self.index = {name: i for i, name in enumerate(self.systems)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for storing the state with the study; `from_dict` reads it back."""
        out: dict[str, Any] = {"systems": list(self.systems), "n": int(self.n),
                               "max_weight": float(self.max_weight)}
        for name in ("shown", "credit", "w_shown", "w_credit", "pair", "m0", "m1", "m2"):
            out[name] = getattr(self, name).tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptiveState:
        arrays = {name: np.asarray(data[name], np.float64)
                  for name in ("shown", "credit", "w_shown", "w_credit", "pair", "m0", "m1",
                               "m2")}
        return cls(systems=tuple(data["systems"]), n=int(data["n"]),
                   max_weight=float(data["max_weight"]), **arrays)


# ---------------------------------------------------------------------------------------------
# The sampling distribution, vectorised over a leading batch axis (one row per study)


def _steering(w_shown: np.ndarray, w_credit: np.ndarray, m0: np.ndarray, m1: np.ndarray,
              m2: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """theta~ (Hajek estimates shrunk by one pseudo-screen at chance 1/k, never 0) and a rough
    variance of each (the sandwich diagonal plus one pseudo-screen of variance 1/4)."""
    theta = (w_credit + 1.0 / k) / (w_shown + 1.0)
    d0, d1, d2 = (np.diagonal(m, axis1=-2, axis2=-1) for m in (m0, m1, m2))
    resid = np.maximum(d2 - 2 * theta * d1 + theta ** 2 * d0, 0.0)
    return theta, (resid + 0.25) / (w_shown + 1.0) ** 2


def _pair_v(theta: np.ndarray, total: np.ndarray, member: np.ndarray, a: np.ndarray,
            b: np.ndarray) -> np.ndarray:
    """v(S) (R, C) for the pair (a, b) per row: E[((c_a - theta_a) 1[a in S] - (c_b - theta_b)
    1[b in S])^2] with P(s first on S) = theta_s / total(S) (Luce on theta)."""
    rows = np.arange(len(theta))
    ta, tb = theta[rows, a][:, None], theta[rows, b][:, None]
    has_a, has_b = member[:, a].T, member[:, b].T  # (R, C)
    pa = np.where(has_a, ta / total, 0.0)
    pb = np.where(has_b, tb / total, 0.0)
    d = ta - tb
    both = pa * (1 - d) ** 2 + pb * (1 + d) ** 2 + (1 - pa - pb) * d ** 2
    only_a = pa * (1 - ta) ** 2 + (1 - pa) * ta ** 2
    only_b = pb * (1 - tb) ** 2 + (1 - pb) * tb ** 2
    return np.where(has_a & has_b, both, np.where(has_a, only_a, np.where(has_b, only_b, 0.0)))


def _overtake(theta: np.ndarray, var: np.ndarray, lower: np.ndarray,
              upper: np.ndarray) -> np.ndarray:
    """Normal-approximation chance that system `lower` is truly above `upper` (per row)."""
    from scipy.special import ndtr

    rows = np.arange(len(theta))
    gap = theta[rows, lower] - theta[rows, upper]
    return ndtr(gap / np.sqrt(var[rows, lower] + var[rows, upper]))


def _distribution(
    theta: np.ndarray,
    shown: np.ndarray,
    n: np.ndarray,
    k: int,
    floor: float,
    warmup: int,
    pair: tuple[int, int] | None = None,
    var: np.ndarray | None = None,
) -> np.ndarray:
    """pi (R, C) over the k-subsets of `_subsets(K, k)`, for R studies: theta, var, shown
    (R, K) steering estimates, their variances and screens per system, n (R,) screens so far.
    See the module text."""
    n_rows, n_sys = theta.shape
    subsets, member = _subsets(n_sys, k)
    n_sub = len(subsets)
    eps = floor * n_sys / k
    total = theta[:, subsets].sum(2)  # (R, C) Luce normaliser of each subset
    if pair is not None:
        a, b = np.full(n_rows, pair[0]), np.full(n_rows, pair[1])
        v = _pair_v(theta, total, member, a, b)
    else:
        # The top three x >= y >= z by theta~; z displaces y with probability p_zy and x with
        # p_zx (normal approximations): v mixes the pairs' v by the chance each is #1-#2.
        top = np.argsort(-theta, axis=1, kind="stable")[:, :3]
        x, y = top[:, 0], top[:, 1]
        v = _pair_v(theta, total, member, x, y)
        if n_sys > 2:
            z = top[:, 2]
            p_zy = _overtake(theta, var, z, y)
            p_zx = np.minimum(_overtake(theta, var, z, x), p_zy)
            v = ((1 - p_zy)[:, None] * v
                 + (p_zy - p_zx)[:, None] * _pair_v(theta, total, member, x, z)
                 + p_zx[:, None] * _pair_v(theta, total, member, y, z))
    q = np.sqrt(np.maximum(v, 0.0))
    q /= q.sum(1, keepdims=True)
    uniform = np.full(n_sub, 1.0 / n_sub)
    q[shown.min(1) < warmup] = uniform
    due = shown < floor * (np.asarray(n, np.float64)[..., None] + 1)  # (R, K)
    late = np.flatnonzero(due.any(1))
    if late.size:
        behind = np.where(due[late], shown[late], np.inf)
        keep = np.argsort(behind, axis=1, kind="stable")[:, :k]  # the k most behind
        must = np.zeros((late.size, n_sys), bool)
        np.put_along_axis(must, keep, True, axis=1)
        must &= due[late]
        holds = (member[None] | ~must[:, None, :]).all(2)  # (late, C)
        q[late] = holds / holds.sum(1, keepdims=True)
    return eps / n_sub + (1 - eps) * q


def _state_distribution(state: AdaptiveState, k: int, floor: float, warmup: int,
                        pair: tuple[str, str] | None) -> np.ndarray:
    fixed = None if pair is None else (state.index[pair[0]], state.index[pair[1]])
    if fixed is not None and fixed[0] == fixed[1]:
        raise ValueError("the question's pair must name two different systems")
    theta, var = _steering(state.w_shown, state.w_credit, state.m0, state.m1, state.m2, k)
    return _distribution(theta[None], state.shown[None], np.array([state.n]), k, floor, warmup,
                         fixed, var[None])[0]


def _check_floor(floor: float, n_sys: int, k: int) -> None:
    if not 0 < floor <= k / n_sys:
        raise ValueError(f"floor must lie in (0, k/K] = (0, {k / n_sys:.4g}]: uniform screens "
                         "give each system k/K of them, and 0 would let weights blow up")


def choose_screen(
    state: AdaptiveState,
    k: int,
    *,
    floor: float,
    rng: np.random.Generator,
    warmup: int = 5,
    pair: tuple[str, str] | None = None,
) -> tuple[tuple[str, ...], float]:
    """The next screen's k systems (in a uniformly random display order) and the exact
    probability with which this subset was chosen, pi_t(S); pass both to `record`.

    pi_t = eps/C + (1 - eps) q_t with eps = floor K / k, q_t the Neyman allocation for the
    weighted Win@1 difference of the current #1 and #2 (or `pair`), uniform while any system
    has fewer than `warmup` screens, forced onto systems whose share would drop below `floor`
    (module text). `floor` in (0, k/K]: every system is on the screen with probability >=
    floor at every lease, and every weight is <= k / (floor K). The display order is a
    separate uniform draw and does not enter the probability (seat by slot balance if
    preferred). Enumerates all C(K, k) subsets: at K = 20, k = 4 (4845) well under a ms.
    """
    n_sys = len(state.systems)
    _check_floor(floor, n_sys, k)
    pi = _state_distribution(state, k, floor, warmup, pair)
    subsets, _ = _subsets(n_sys, k)
    cum = np.cumsum(pi)
    index = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(pi) - 1)
    order = rng.permutation(subsets[index])
    return tuple(state.systems[i] for i in order), float(pi[index])


def screen_probabilities(
    state: AdaptiveState,
    k: int,
    *,
    floor: float,
    warmup: int = 5,
    pair: tuple[str, str] | None = None,
) -> dict[tuple[str, ...], float]:
    """The whole distribution `choose_screen` samples from now: {subset (names in `systems`
    order): probability}; the probabilities sum to 1. For tests and for the progress page."""
    n_sys = len(state.systems)
    _check_floor(floor, n_sys, k)
    pi = _state_distribution(state, k, floor, warmup, pair)
    subsets, _ = _subsets(n_sys, k)
    return {tuple(state.systems[i] for i in s): float(p) for s, p in zip(subsets, pi)}


# ---------------------------------------------------------------------------------------------
# Recording rankings and estimating


def _update(st: dict[str, np.ndarray], member: np.ndarray, credit: np.ndarray,
            weight: np.ndarray) -> None:
    """Add R screens (one per study row) to batched statistics in place. member (R, K) bool,
    credit (R, K), weight (R,)."""
    m = member.astype(np.float64)
    w = weight[:, None]
    st["shown"] += m
    st["credit"] += credit
    st["w_shown"] += w * m
    st["w_credit"] += w * credit
    w2 = (weight ** 2)[:, None, None]
    mm = m[:, :, None] * m[:, None, :]
    st["pair"] += mm
    st["m0"] += w2 * mm
    st["m1"] += w2 * mm * credit[:, :, None]
    st["m2"] += w2 * credit[:, :, None] * credit[:, None, :]


def record(
    state: AdaptiveState,
    screen: Sequence[str],
    ranking: Sequence[Sequence[str]],
    probability: float,
) -> None:
    """Add one ranking (tie groups of names, best first) of `screen` (the systems shown,
    any order), chosen with `probability` (from `choose_screen`; for a uniformly random
    k-subset pass 1 / C(K, k), which gives weight 1)."""
    n_sys = len(state.systems)
    idx = [state.index[name] for name in screen]
    k = len(idx)
    if len(set(idx)) != k or not 1 <= k < n_sys:
        raise ValueError("a screen shows 1 <= k < K distinct systems")
    placed = [name for group in ranking for name in group]
    if any(len(g) == 0 for g in ranking) or sorted(placed) != sorted(screen):
        raise ValueError("the ranking must place every system of the screen exactly once")
    if not 0 < probability <= 1:
        raise ValueError("probability must lie in (0, 1]")
    member = np.zeros((1, n_sys), bool)
    member[0, idx] = True
    credit = np.zeros((1, n_sys))
    credit[0, [state.index[name] for name in ranking[0]]] = 1.0 / len(ranking[0])
    weight = 1.0 / (comb(n_sys, k) * probability)
    batch = {name: getattr(state, name)[None] for name in
             ("shown", "credit", "w_shown", "w_credit", "pair", "m0", "m1", "m2")}
    _update(batch, member, credit, np.array([weight]))
    state.n += 1
    state.max_weight = max(state.max_weight, weight)


def _estimates(w_shown: np.ndarray, w_credit: np.ndarray, m0: np.ndarray, m1: np.ndarray,
               m2: np.ndarray, n) -> tuple[np.ndarray, np.ndarray]:
    """Hajek Win@1 (..., K) and its sandwich covariance (..., K, K); NaN where never shown."""
    with np.errstate(invalid="ignore", divide="ignore"):
        theta = w_credit / w_shown
        t = np.nan_to_num(theta)
        resid = (m2 - t[..., None, :] * m1 - t[..., :, None] * m1.swapaxes(-1, -2)
                 + t[..., :, None] * t[..., None, :] * m0)
        n = np.asarray(n, np.float64)
        scale = np.where(n > 1, n / np.maximum(n - 1, 1), np.nan)[..., None, None]
        cov = scale * resid / (w_shown[..., :, None] * w_shown[..., None, :])
    return theta, cov


def _score_interval(w_credit: np.ndarray, w_shown: np.ndarray, m0: np.ndarray, m1: np.ndarray,
                    m2: np.ndarray, n, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Each system's interval by inverting the self-normalised martingale statistic:
    {theta : (A - theta W)^2 <= z^2 n/(n-1) sum_t w_t^2 1[s] (c_ts - theta)^2}, A = weighted
    credit, W = weighted shows; a quadratic in theta (Wilson's interval when all w = 1 and there
    are no ties). Its variance is taken at the candidate theta, not at the estimate, which keeps
    small Win@1 covered on both sides. Clipped to [0, 1]; [0, 1] when undetermined."""
    d0, d1, d2 = (np.diagonal(m, axis1=-2, axis2=-1) for m in (m0, m1, m2))
    n = np.asarray(n, np.float64)[..., None]
    c = z * z * np.where(n > 1, n / np.maximum(n - 1, 1), np.inf)
    qa = w_shown ** 2 - c * d0
    qb = w_credit * w_shown - c * d1  # the quadratic is qa t^2 - 2 qb t + qc <= 0
    qc = w_credit ** 2 - c * d2
    disc = qb ** 2 - qa * qc
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(np.maximum(disc, 0.0))
        lo, hi = (qb - root) / qa, (qb + root) / qa
    ok = (qa > 0) & (disc >= 0) & (w_shown > 0)
    return (np.where(ok, np.clip(lo, 0.0, 1.0), 0.0), np.where(ok, np.clip(hi, 0.0, 1.0), 1.0))


def _z(alpha: float) -> float:
    if alpha in _Z:
        return _Z[alpha]
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2))


def ipw_win1(
    state: AdaptiveState,
    *,
    alpha: float = 0.05,
    pair: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Win@1 per system, inverse-probability weighted (Hajek) so that it estimates Win@1 under
    uniformly random k-subsets whatever the adaptive rule, with 1 - alpha intervals from the
    martingale CLT (per system: the score interval of `_score_interval`, variance at the
    candidate value; the difference of #1 and #2, or of `pair`: estimate +- z x sandwich SE,
    covariance included). `se` is the sandwich SE at the estimate. JSON-ready:
    `systems` best first, each {system, win1, se, lower, upper, shown, share}; `difference`
    {a, b, estimate, se, lower, upper}; None where undefined (a system never shown)."""
    theta, cov = _estimates(state.w_shown, state.w_credit, state.m0, state.m1, state.m2,
                            state.n)
    z = _z(alpha)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    lower, upper = _score_interval(state.w_credit, state.w_shown, state.m0, state.m1, state.m2,
                                   state.n, z)
    order = sorted(range(len(state.systems)),
                   key=lambda i: (-np.nan_to_num(theta[i], nan=-np.inf), state.systems[i]))
    if pair is None:
        ia, ib = order[0], order[1]
    else:
        ia, ib = state.index[pair[0]], state.index[pair[1]]
    diff = theta[ia] - theta[ib]
    diff_se = np.sqrt(max(cov[ia, ia] + cov[ib, ib] - 2 * cov[ia, ib], 0.0))

    def num(x: float) -> float | None:
        return None if not np.isfinite(x) else float(x)

    return {
        "method": METHOD,
        "target": "Win@1 when every screen is a uniformly random k-subset of the systems",
        "alpha": float(alpha),
        "n_screens": int(state.n),
        "max_weight": float(state.max_weight),
        "systems": [{
            "system": state.systems[i],
            "win1": num(theta[i]),
            "se": num(se[i]),
            "lower": num(lower[i]) if state.shown[i] else None,
            "upper": num(upper[i]) if state.shown[i] else None,
            "shown": int(state.shown[i]),
            "share": num(state.shown[i] / state.n) if state.n else None,
        } for i in order],
        "difference": {
            "a": state.systems[ia],
            "b": state.systems[ib],
            "estimate": num(diff),
            "se": num(diff_se),
            "lower": num(diff - z * diff_se),
            "upper": num(diff + z * diff_se),
        },
    }


# ---------------------------------------------------------------------------------------------
# Simulated studies, vectorised over studies (for the tests, the bench and the README)


def simulate_adaptive(
    log_worths: Sequence[float],
    n_rankings: int,
    k: int,
    *,
    floor: float,
    adaptive: bool = True,
    tie_rate: float = 0.0,
    warmup: int = 5,
    pair: tuple[int, int] | None = None,
    alpha: float = 0.05,
    n_studies: int = 200,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """`n_studies` studies of `n_rankings` rankings each from `simulate`'s Plackett-Luce
    model (no reliability spread or position bias), screens chosen one at a time by
    `choose_screen`'s rule (`adaptive`) or as uniformly random k-subsets.

    Returns arrays over studies: win1 (S, K) Hajek estimates, cov (S, K, K), lower and upper
    (S, K) the score intervals at `alpha`, naive (S, K) the unweighted credit / shown, share
    (S, K) of screens per system, max_weight (S,). `pair` fixes the question's two systems.
    """
    w = np.asarray(log_worths, np.float64)
    n_sys = len(w)
    _check_floor(floor, n_sys, k)
    subsets, member = _subsets(n_sys, k)
    n_sub = len(subsets)
    rng = np.random.default_rng(seed)
    s = n_studies
    st = {name: np.zeros((s, n_sys)) for name in ("shown", "credit", "w_shown", "w_credit")}
    st.update({name: np.zeros((s, n_sys, n_sys)) for name in ("pair", "m0", "m1", "m2")})
    max_weight = np.zeros(s)
    rows = np.arange(s)
    for t in range(n_rankings):
        if adaptive:
            theta, var = _steering(st["w_shown"], st["w_credit"], st["m0"], st["m1"], st["m2"],
                                   k)
            pi = _distribution(theta, st["shown"], np.full(s, t), k, floor, warmup, pair, var)
            cum = np.cumsum(pi, axis=1)
            pick = (cum < rng.random(s)[:, None] * cum[:, -1:]).sum(1)
            pick = np.minimum(pick, n_sub - 1)
            prob = pi[rows, pick]
        else:
            pick = rng.integers(0, n_sub, s)
            prob = np.full(s, 1.0 / n_sub)
        shown = subsets[pick]  # (S, k)
        value = w[shown] + rng.gumbel(size=shown.shape)
        ranked = np.take_along_axis(shown, np.argsort(-value, axis=1), axis=1)
        merged = rng.random((s, k - 1)) < tie_rate
        g = 1 + np.cumprod(merged, axis=1).sum(1)
        credit = np.zeros((s, n_sys))
        np.put_along_axis(credit, ranked, (np.arange(k)[None] < g[:, None]) / g[:, None],
                          axis=1)
        weight = 1.0 / (n_sub * prob)
        _update(st, member[pick], credit, weight)
        max_weight = np.maximum(max_weight, weight)
    win1, cov = _estimates(st["w_shown"], st["w_credit"], st["m0"], st["m1"], st["m2"],
                           n_rankings)
    lower, upper = _score_interval(st["w_credit"], st["w_shown"], st["m0"], st["m1"], st["m2"],
                                   n_rankings, _z(alpha))
    with np.errstate(invalid="ignore", divide="ignore"):
        naive = st["credit"] / st["shown"]
    return {"win1": win1, "cov": cov, "lower": lower, "upper": upper, "naive": naive,
            "share": st["shown"] / n_rankings, "max_weight": max_weight}
