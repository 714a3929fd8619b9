"""Ties as data (design.md §6): Plackett-Luce with one tie parameter per observed tie order, as
in Turner et al. (2020) and the PlackettLuce R package, fitted by maximum likelihood.

Model. A ranking is tie groups C_1, C_2, ... best first; C_j is chosen from the systems not yet
placed, A_j, with probability f(C_j) / sum_{S subset of A_j, |S| in D} f(S), where
f(S) = delta_|S| * (prod_{i in S} alpha_i)^(1/|S|), delta_1 = 1 and D = {1} and the tie orders
observed (an order never observed has delta = 0, its maximum-likelihood value). An untied last
place is certain and drops out; a tied last group does not. As in the R package's default, a
hypothetical item of log-worth 0 wins `npseudo` = 0.5 times against, and loses as often to,
every system: that keeps every worth finite (a system that always wins) and shrinks little.
Fitted by Newton's method on log-worths and log tie parameters (the log-likelihood is concave
in them); standard errors from the inverse observed information.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations
from math import comb
from typing import Any

import numpy as np
from scipy import sparse

from .fits import _newton
from .tables import UNITS, Annotation, _num, _Table, _table

NPSEUDO = 0.5  # the PlackettLuce package's default prior strength
# (choice set, candidate group) pairs the fit enumerates at most: beyond this (many systems per
# screen with high tie orders) the model is too costly for a page and is left out.
MAX_CANDIDATES = 500_000
_LOG_DELTA_INFINITE = 25.0  # delta above e^25 (about 7e10): the estimate is infinite
METHOD = ("Plackett-Luce with a tie parameter per observed tie order (Turner et al. 2020, the "
          "PlackettLuce R package), maximum likelihood with npseudo wins and losses against a "
          "hypothetical item of log-worth 0; log-worths centred at mean 0")


def plackett_luce_ties(
    annotations: Iterable[Annotation],
    systems: Sequence[str] | None = None,
    *,
    unit: str = "annotation",
    npseudo: float = NPSEUDO,
) -> dict[str, Any]:
    """The tie model fitted to one criterion's rankings, as a JSON-ready dict.

    Keys: `method`, `npseudo`, `systems`, `worth` (log-worths, mean 0 over the systems shown;
    None for a system never shown), `worth_se`, `tie_orders` (observed orders >= 2),
    `tie_parameters` {"2": delta_2, ...}, `log_tie_se` (standard errors of log delta),
    `tie_share_equal` {"2": delta_2 / (2 + delta_2), ...}: the chance that d equally good
    systems, left alone, all tie (delta_d / sum over allowed orders e <= d of C(d, e) delta_e),
    `n_rankings`, `converged`. `npseudo=0` gives the plain maximum-likelihood fit, which needs
    a strongly connected comparison graph to be finite.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
    return _fit_ties(_table(annotations, systems, unit), npseudo)


# ---------------------------------------------------------------------------------------------
# Sufficient statistics: what each system and tie order is credited, and the choice sets


def _statistics(t: _Table, npseudo: float):
    """(credit (K + 1,), orders, group_counts (len(orders),), sets (U, K + 1) bool, weight (U,)).

    Column K is the hypothetical item. credit_i = sum over chosen groups holding i of 1 / |C|
    (the sufficient statistic of log alpha_i); group_counts = chosen groups of each order.
    """
    shown, first, last = t.shown, t.first, t.last
    n_sys = shown.shape[1]
    g = np.where(shown, last - first + 1, 1)
    # Every group is a choice except an untied last place (chosen from itself, probability 1).
    included = shown & ~((g == 1) & (last == t.k[:, None]))
    credit = np.zeros(n_sys + 1)
    credit[:n_sys] = (included / g).sum(0) + npseudo
    sizes = np.bincount(g[shown], minlength=2)
    group_counts = sizes / np.maximum(np.arange(len(sizes)), 1)  # members -> groups
    orders = [d for d in range(2, len(sizes)) if sizes[d] > 0]
    ghost = n_sys
    bits = np.int64(1) << np.arange(n_sys + 1, dtype=np.int64)
    if included.any():
        # The set each group is chosen from: the systems shown and not placed above it, as a
        # bit mask, built one system at a time so that memory stays at one (N, K) array.
        below = np.zeros(first.shape, np.int64)
        for u in range(n_sys):
            below |= np.where(shown[:, u:u + 1] & (first[:, u:u + 1] >= first), bits[u], 0)
        # Each member of a group of g carries 1/g, so the group counts once.
        codes, share = below[included], 1.0 / g[included]
        if n_sys <= 20:  # count by mask directly: no sort of millions of codes
            weight = np.bincount(codes, weights=share, minlength=1 << n_sys)
            uniq = np.flatnonzero(weight > 0)
            weight = weight[uniq]
        else:
            uniq, inverse = np.unique(codes, return_inverse=True)
            weight = np.bincount(np.asarray(inverse).ravel(), weights=share)
    else:
        uniq, weight = np.zeros(0, np.int64), np.zeros(0)
    if npseudo > 0:  # each system against the hypothetical item, 2 * npseudo choices per pair
        uniq = np.concatenate([uniq, bits[:n_sys] | bits[ghost]])
        weight = np.concatenate([weight, np.full(n_sys, 2.0 * npseudo)])
    sets = (uniq[:, None] >> np.arange(n_sys + 1)) & 1 == 1
    return credit, orders, np.array([group_counts[d] for d in orders]), sets, weight


def _candidates(sets: np.ndarray, orders: list[int]):
    """Every group that may be chosen from each set: (membership (S, K + 1) bool, size (S,),
    M (U, S) sparse indicator of candidate S in set u)."""
    n_cols = sets.shape[1]
    bits = np.int64(1) << np.arange(n_cols, dtype=np.int64)
    size = sets.sum(1)
    u_parts, code_parts = [], []
    for p in np.unique(size):
        us = np.flatnonzero(size == p)
        members = np.nonzero(sets[us])[1].reshape(len(us), p)  # (U_p, p) column indices
        for d in [1, *orders]:
            if d > p:
                continue
            combos = np.array(list(combinations(range(p), d)), np.int64)  # (C, d)
            codes = bits[members[:, combos]].sum(2)  # (U_p, C)
            u_parts.append(np.repeat(us, len(combos)))
            code_parts.append(codes.ravel())
            if sum(map(len, u_parts)) > MAX_CANDIDATES:
                return None
    u_of = np.concatenate(u_parts)
    codes, s_of = np.unique(np.concatenate(code_parts), return_inverse=True)
    s_of = np.asarray(s_of).ravel()
    member = (codes[:, None] >> np.arange(n_cols)) & 1 == 1
    m = sparse.csr_matrix((np.ones(len(u_of)), (u_of, s_of)), shape=(len(sets), len(codes)))
    return member, member.sum(1), m


def _fit_ties(t: _Table, npseudo: float = NPSEUDO) -> dict[str, Any]:
    names = list(t.systems)
    n_sys = len(names)
    out: dict[str, Any] = {"method": METHOD, "npseudo": float(npseudo), "systems": names,
                           "worth": [None] * n_sys, "worth_se": [None] * n_sys,
                           "tie_orders": [], "tie_parameters": {}, "log_tie_se": {},
                           "tie_share_equal": {}, "n_rankings": int(len(t.item)),
                           "converged": False}
    if n_sys == 0 or n_sys > 61:  # choice sets are bit masks over systems + the hypothetical
        return out
    credit, orders, counts, sets, weight = _statistics(t, npseudo)
    out["tie_orders"] = orders
    if len(sets) == 0:
        return out
    cand = _candidates(sets, orders)
    if cand is None:
        return out
    member, size, m = cand
    n_ord = len(orders)
    # Features of each candidate group S: mean log-worth of its systems (the hypothetical item
    # sits at 0 and drops out), and which tie order it is.
    phi = np.zeros((len(size), n_sys + n_ord))
    phi[:, :n_sys] = member[:, :n_sys] / size[:, None]
    for j, d in enumerate(orders):
        phi[:, n_sys + j] = size == d
    b = np.concatenate([credit[:n_sys], counts])
    mt = m.T.tocsr()

    def parts(beta):
        lin = phi @ beta
        top = lin.max()
        v = np.exp(lin - top)
        z = m @ v
        return v, z, top

    def objective(beta):  # negative log-posterior, batch of one
        v, z, top = parts(beta[0])
        return np.array([weight @ (np.log(z) + top) - b @ beta[0]])

    def grad_hess(beta):
        v, z, _ = parts(beta[0])
        c = v * (mt @ (weight / z))  # expected choices of each candidate
        grad = phi.T @ c - b
        mean = (m @ (v[:, None] * phi)) / z[:, None]  # (U, P) expected features per set
        hess = phi.T @ (c[:, None] * phi) - mean.T @ (weight[:, None] * mean)
        return grad[None], hess[None]

    start = np.zeros(n_sys + n_ord)
    start[n_sys:] = np.log(0.1)  # the R package's starting tie parameters
    beta = _newton(objective, grad_hess, start[None], 1e-10, 200)[0]
    grad, hess = grad_hess(beta[None])
    out["converged"] = bool(np.all(np.isfinite(beta))
                            and np.abs(grad[0]).max() < 1e-6 * max(1.0, b.sum()))
    cov = np.linalg.pinv(hess[0])
    shown = t.shown.any(0)
    n_shown = int(shown.sum())
    if n_shown:
        theta = np.where(shown, beta[:n_sys] - beta[:n_sys][shown].mean(), np.nan)
        # Centring is linear: C theta with C = I - 1 1^T / n on the shown systems.
        centre = np.where(shown[None, :], np.eye(n_sys) - shown[None, :] / n_shown, 0.0)
        var = np.diag(centre @ cov[:n_sys, :n_sys] @ centre.T)
        se = np.where(shown, np.sqrt(np.maximum(var, 0.0)), np.nan)
        out["worth"] = [_num(v) for v in theta]
        out["worth_se"] = [_num(v) for v in se]
    # A tie order that every choice among that many systems took has an infinite estimate
    # (Newton stops far out on the flat tail): reported as None.
    with np.errstate(over="ignore", invalid="ignore"):
        deltas = {1: 1.0, **{d: float(np.exp(v)) if v < _LOG_DELTA_INFINITE else np.inf
                             for d, v in zip(orders, beta[n_sys:])}}
        for j, d in enumerate(orders):
            out["tie_parameters"][str(d)] = _num(deltas[d])
            out["log_tie_se"][str(d)] = _num(np.sqrt(max(cov[n_sys + j, n_sys + j], 0.0)))
            # d equally good systems left: any group of an allowed order may be chosen.
            total = sum(comb(d, e) * delta for e, delta in deltas.items() if e <= d)
            out["tie_share_equal"][str(d)] = _num(deltas[d] / total)
    return out
