"""Paired significance between systems: exact sign tests over items, Holm's correction, and
the compact letter display of the groups the data cannot separate."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from .bootstrap import _interval, _pair
from .tables import _EPS, _num


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values (same order as given)."""
    p = np.asarray(pvalues, np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out


def sign_test(n_better, n_worse):
    """Exact two-sided sign test: p = min(1, 2 P(X <= min)), X ~ Binomial(better + worse, 1/2)."""
    b, w = np.asarray(n_better), np.asarray(n_worse)
    return np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(b, w), b + w, 0.5))


def significance_groups(
    names: Sequence[str], separable
) -> tuple[dict[str, str], list[list[str]]]:
    """Compact letter display: each maximal set of systems no two of which the data separate
    gets a letter; systems sharing a letter cannot be told apart.

    `names` best first; separable[i][j] True when systems i and j differ significantly.
    Returns ({system: letters}, groups best first).
    """
    k = len(names)
    near = [{j for j in range(k) if j != i and not separable[i][j]} for i in range(k)]
    cliques: list[set[int]] = []

    def extend(clique: set[int], candidates: set[int], excluded: set[int]) -> None:
        # Bron-Kerbosch with pivoting: lists every maximal clique of the "cannot separate" graph.
        if not candidates and not excluded:
            cliques.append(clique)
            return
        pivot = max(candidates | excluded, key=lambda u: len(near[u] & candidates))
        for v in sorted(candidates - near[pivot]):
            extend(clique | {v}, candidates & near[v], excluded & near[v])
            candidates = candidates - {v}
            excluded = excluded | {v}

    if k:
        extend(set(), set(range(k)), set())
    groups = sorted((sorted(c) for c in cliques))
    letters = {name: "" for name in names}
    for g, members in enumerate(groups):
        for i in members:
            letters[names[i]] += _letter(g)
    return letters, [[names[i] for i in members] for members in groups]


def _letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(ord("a") + r) + s
    return s


def _pair_tests(names, order, extra, w1, boot_win1, alpha) -> tuple[list[dict], np.ndarray]:
    """Paired sign tests over items on the Win@1 difference, best-ranked system of each pair
    first, Holm-corrected over the pairs ever shown together on an item."""
    diff, together = extra["win1_diff"], extra["together"]
    n_better = (diff > _EPS).sum(0)
    n_items_together = together.sum(0)
    diff_ci = _interval(boot_win1[:, :, None] - boot_win1[:, None, :], alpha)  # same rounds
    tests = []
    for i, s in enumerate(order):
        for u in order[i + 1:]:
            if n_items_together[s, u] == 0:
                continue
            tests.append({
                "a": names[s],
                "b": names[u],
                "win1_diff": _num(w1[s] - w1[u]),
                "win1_diff_ci": _pair(diff_ci, s, u),
                "n_items": int(n_items_together[s, u]),
                "a_better": int(n_better[s, u]),
                "b_better": int(n_better[u, s]),
                "p": float(sign_test(n_better[s, u], n_better[u, s])),
            })
    separable = np.zeros((len(names), len(names)), bool)
    index = {name: i for i, name in enumerate(names)}
    for test, p_adj in zip(tests, holm([test["p"] for test in tests])):
        test["p_holm"] = float(p_adj)
        test["separable"] = bool(p_adj < alpha)
        s, u = index[test["a"]], index[test["b"]]
        separable[s, u] = separable[u, s] = test["separable"]
    return tests, separable
