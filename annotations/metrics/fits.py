"""Bradley-Terry and Plackett-Luce MAP fits on arrays, batched over bootstrap rounds by one
damped Newton solver, and the Elo-like scale the leaderboard reports them on."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.special import expit

# L2 prior strength on Bradley-Terry / Plackett-Luce log-strengths (penalty alpha * sum(theta^2),
# a Gaussian prior with variance 1 / (2 alpha) = 50): negligible next to real data, but it keeps a
# system that always wins finite and makes every fit unique (the prior centres each connected
# component of the comparison graph at 0).
BT_PRIOR = 0.01
ELO_SCALE = 400 / math.log(10)  # 400 * log10(e^theta) = theta * 400 / ln 10
ELO_MEAN = 1000.0


# ---------------------------------------------------------------------------------------------
# Bradley-Terry and Plackett-Luce: batched damped Newton over (rounds x systems)


def _newton(objective, grad_hess, theta: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    """Minimise a strictly convex objective for a batch of problems at once.

    `objective(theta) -> (R,)`, `grad_hess(theta) -> (R, K), (R, K, K)`. Backtracking keeps each
    problem's objective non-increasing, so nearly separable data cannot make Newton overshoot.
    With ~1e6 comparisons, steps below ~1e-9 are floating-point noise, hence tol ~1e-8 (in
    log-strength; 1e-6 Elo points).
    """
    f = objective(theta)
    for _ in range(max_iter):
        grad, hess = grad_hess(theta)
        # Without a prior the Hessian is singular along theta + c (strengths are relative). The
        # gradient has no component there, so a ridge far below the curvature only makes the
        # solve possible; it does not move the optimum.
        diag = np.abs(np.diagonal(hess, axis1=1, axis2=2)).max(1, initial=0.0)
        hess = hess + np.eye(hess.shape[-1]) * (1e-12 * diag + 1e-300)[:, None, None]
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        scale = np.ones(theta.shape[0])
        for _ in range(50):
            f_new = objective(theta - scale[:, None] * step)
            worse = f_new > f + 1e-12 * np.abs(f)
            if not worse.any():
                break
            scale[worse] /= 2
        scale[worse] = 0.0  # no descent left at all: that problem has converged
        theta = theta - scale[:, None] * step
        f = np.where(worse, f, f_new)
        if np.max(np.abs(scale[:, None] * step), initial=0.0) < tol:
            break
    return theta


def bradley_terry(
    wins: np.ndarray, alpha: float = BT_PRIOR, *, tol: float = 1e-8, max_iter: int = 100
) -> np.ndarray:
    """MAP Bradley-Terry log-strengths; `wins[..., s, t]` = times s beat t (a tie is 0.5 each way).

    Minimises sum_st wins[s,t] * log(1 + exp(theta_t - theta_s)) + alpha * sum_s theta_s^2 for
    every leading index at once. Returns theta[..., K], mean 0 over systems with comparisons,
    NaN for systems with none. In a disconnected comparison graph the prior centres each
    component at 0, so scores are only comparable within a component.
    """
    wins = np.asarray(wins, np.float64)
    lead, n_sys = wins.shape[:-2], wins.shape[-1]
    c = wins.reshape(int(np.prod(lead)), n_sys, n_sys)
    played = c + np.swapaxes(c, 1, 2)
    won = c.sum(2)
    eye = np.eye(n_sys, dtype=bool)

    def objective(theta):
        diff = theta[:, None, :] - theta[:, :, None]  # [s, t] = theta_t - theta_s
        return (c * np.logaddexp(0.0, diff)).sum((1, 2)) + alpha * (theta**2).sum(1)

    def grad_hess(theta):
        p = expit(theta[:, :, None] - theta[:, None, :])  # P(s beats t)
        grad = (played * p).sum(2) - won + 2 * alpha * theta
        w = played * p * (1 - p)
        hess = np.where(eye, 0.0, -w)
        hess += np.eye(n_sys) * (w.sum(2) + 2 * alpha)[:, :, None]
        return grad, hess

    theta = _newton(objective, grad_hess, np.zeros(c.shape[:2]), tol, max_iter)
    has_data = played.sum(2) > 0
    theta = np.where(has_data, theta, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
        theta = theta - np.nanmean(theta, axis=1, keepdims=True)
    return theta.reshape(*lead, n_sys)


def _plackett_luce_fit(
    chosen: np.ndarray, sets: np.ndarray, set_counts: np.ndarray, alpha: float
) -> np.ndarray:
    """MAP Plackett-Luce (Breslow ties) for R problems at once.

    chosen (R, K): times each system was chosen; sets (U, K): choice sets; set_counts (R, U):
    choices made from each set. Log-likelihood: sum_s chosen_s theta_s
    - sum_u set_counts_u * log sum_{s in u} exp(theta_s). Every sum over sets is a matrix
    product with the (U, K) membership matrix, so a round costs a few small GEMMs.
    """
    r, n_sys = chosen.shape
    member = sets.astype(np.float64)
    member_pairs = (member[:, :, None] * member[:, None, :]).reshape(len(sets), -1)
    tiny = np.finfo(np.float64).tiny

    def strengths(theta):
        top = theta.max(1, keepdims=True)
        e = np.exp(theta - top)  # relative strengths, <= 1, so no overflow
        return e, top, np.maximum(e @ member.T, tiny)  # (R, U) strength of each set

    def objective(theta):
        _, top, sums = strengths(theta)
        lse = np.log(sums) + top
        return -(chosen * theta).sum(1) + (set_counts * lse).sum(1) + alpha * (theta**2).sum(1)

    def grad_hess(theta):
        e, _, sums = strengths(theta)
        rate = set_counts / sums
        expected = e * (rate @ member)  # sum_u count_u * P(s chosen from u)
        grad = expected - chosen + 2 * alpha * theta
        # Hessian: sum_u count_u (diag(p_u) - p_u p_u^T), with p_u = e * member_u / sums_u.
        outer = ((set_counts / sums**2) @ member_pairs).reshape(r, n_sys, n_sys)
        hess = -(e[:, :, None] * e[:, None, :]) * outer
        hess += np.eye(n_sys) * (expected + 2 * alpha)[:, :, None]
        return grad, hess

    theta = _newton(objective, grad_hess, np.zeros((r, n_sys)), 1e-8, 100)
    has_data = (set_counts @ member) > 0
    theta = np.where(has_data, theta, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return theta - np.nanmean(theta, axis=1, keepdims=True)


def to_elo(theta):
    """Log-strength -> Elo-like 400 * log10(strength) + 1000 (mean 1000 when mean theta = 0)."""
    return np.asarray(theta, np.float64) * ELO_SCALE + ELO_MEAN
