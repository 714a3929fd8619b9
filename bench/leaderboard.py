"""Benchmark: the full leaderboard (every figure, 1000 bootstrap rounds over items) on 100,000
rankings against the per-round refitting loop that Chatbot Arena's script uses; then the same
on 1,000,000 rankings (100,000 items) in a child process, whose peak memory is measured.

Run: .venv/bin/python bench/leaderboard.py [--quick] [--no-million]. Last line: RESULT {json}
(seconds are wall-clock, cpu_seconds the process's CPU time; peak_rss_gb_1m is the child's
ru_maxrss in GiB, input included).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotations.metrics import (  # noqa: E402
    BT_PRIOR,
    Annotation,
    bootstrap_counts,
    leaderboard,
    pairwise_wins,
)

SYSTEMS = ("empathy-r1", "gpt-4o", "llama-3-70b", "qwen2.5-72b", "mistral-large", "gpt-3.5-turbo")
STRENGTHS = np.array([1.2, 0.5, 0.3, 0.0, -0.3, -0.9])  # Plackett-Luce log-strengths
TIE_RATE = 0.1  # chance that a response is tied with the one ranked just above it


def generate(n_items: int, per_item: int, seed: int) -> list[Annotation]:
    """Plackett-Luce rankings (Gumbel-max trick), some adjacent places merged into ties."""
    rng = np.random.default_rng(seed)
    n, k = n_items * per_item, len(SYSTEMS)
    order = np.argsort(-(STRENGTHS + rng.gumbel(size=(n, k))), axis=1)
    tie_with_above = rng.random((n, k)) < TIE_RATE
    display = np.argsort(rng.random((n, k)), axis=1)
    seconds = rng.lognormal(3.5, 0.5, size=n)
    annotators = [f"rater{i:03d}" for i in range(200)]
    rater = rng.integers(0, len(annotators), size=n)
    out = []
    for row in range(n):
        groups: list[list[str]] = []
        for place, s in enumerate(order[row]):
            if place and tie_with_above[row, place]:
                groups[-1].append(SYSTEMS[s])
            else:
                groups.append([SYSTEMS[s]])
        out.append(Annotation(
            item=f"item{row // per_item}",
            annotator=annotators[rater[row]],
            ranking=tuple(tuple(g) for g in groups),
            display_order=tuple(SYSTEMS[s] for s in display[row]),
            seconds=float(seconds[row]),
        ))
    return out


def generate_shared(n_items: int, per_item: int, seed: int) -> list[Annotation]:
    """As `generate` (same model, vectorised draws), for a million rankings: rankings and
    display orders that are equal share one tuple, as rows read from a database would not, so
    that the input list itself stays near 100 bytes a ranking and the memory measured is the
    leaderboard's."""
    rng = np.random.default_rng(seed)
    n, k = n_items * per_item, len(SYSTEMS)
    order = np.argsort(-(STRENGTHS + rng.gumbel(size=(n, k))), axis=1)
    tie_with_above = rng.random((n, k)) < TIE_RATE
    tie_with_above[:, 0] = False
    display = np.argsort(rng.random((n, k)), axis=1)
    seconds = rng.lognormal(3.5, 0.5, size=n).tolist()
    rater = rng.integers(0, 200, size=n)
    annotators = [f"rater{i:03d}" for i in range(200)]
    code = (order * 6 ** np.arange(k)).sum(1) * 2 ** k + (tie_with_above * 2 ** np.arange(k)).sum(1)
    _, first_row, which = np.unique(code, return_index=True, return_inverse=True)
    rankings = []
    for row in first_row:
        groups: list[list[str]] = []
        for place, s in enumerate(order[row]):
            if tie_with_above[row, place]:
                groups[-1].append(SYSTEMS[s])
            else:
                groups.append([SYSTEMS[s]])
        rankings.append(tuple(tuple(g) for g in groups))
    d_code = (display * 6 ** np.arange(k)).sum(1)
    _, d_first, d_which = np.unique(d_code, return_index=True, return_inverse=True)
    displays = [tuple(SYSTEMS[s] for s in display[row]) for row in d_first]
    items = [f"item{i}" for i in range(n_items)]
    which, d_which = np.asarray(which).ravel().tolist(), np.asarray(d_which).ravel().tolist()
    rater = rater.tolist()
    return [Annotation(items[row // per_item], annotators[rater[row]], rankings[which[row]],
                       displays[d_which[row]], seconds[row]) for row in range(n)]


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def million(rounds: int, seed: int) -> None:
    """The child process: 1,000,000 rankings over 100,000 items; prints one JSON line."""
    n_items, per_item = 100_000, 10
    t0 = time.perf_counter()
    annotations = generate_shared(n_items, per_item, seed=2)
    generated = time.perf_counter() - t0
    rss_input = _peak_rss_gb()
    t0, c0 = time.perf_counter(), time.process_time()
    result = leaderboard(annotations, rounds=rounds, seed=seed)
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({
        "rankings": len(annotations), "items": n_items, "rounds": rounds,
        "generate_seconds": round(generated, 2), "seconds": round(took, 3),
        "cpu_seconds": round(cpu, 3), "peak_rss_gb": round(_peak_rss_gb(), 3),
        "rss_after_input_gb": round(rss_input, 3),
        "robustness_count": result["robustness"]["count"],
        "robustness_share": result["robustness"]["share"],
        "robustness_confirmed": result["robustness"]["confirmed"],
        "new_leader": result["robustness"]["new_leader"],
        "tie_parameters": result["tie_parameters"],
        "win1": {e["system"]: e["win1"] for e in result["systems"]},
    }))


def baseline(annotations: list[Annotation], rounds: int, seed: int) -> tuple[np.ndarray, float]:
    """Refit Bradley-Terry once per bootstrap round in a Python loop, as Chatbot Arena's
    `get_bootstrap_result` does (resample the battles, rebuild the win counts, fit), with the
    same cluster resampling over items so that the two compute the same thing.

    Returns the per-round centred log-strengths and the seconds per round.
    """
    import choix

    names = list(SYSTEMS)
    index = {s: i for i, s in enumerate(names)}
    k = len(names)
    # Battles: one row per pair of systems in a ranking, as the arena log has one per battle.
    items: dict[str, list[int]] = {}
    winner, loser, weight = [], [], []
    battle_item = []
    for ann in annotations:
        i = items.setdefault(ann.item, len(items))
        flat = [(index[s], g) for g, group in enumerate(ann.ranking) for s in group]
        for x in range(len(flat)):
            for y in range(x + 1, len(flat)):
                (s, gs), (t, gt) = flat[x], flat[y]
                if gs == gt:  # a tie: half a win each way
                    winner += [s, t]
                    loser += [t, s]
                    weight += [0.5, 0.5]
                    battle_item += [i, i]
                else:
                    winner.append(s)
                    loser.append(t)
                    weight.append(1.0)
                    battle_item.append(i)
    winner, loser = np.array(winner), np.array(loser)
    weight, battle_item = np.array(weight), np.array(battle_item)
    by_item = np.argsort(battle_item, kind="stable")
    starts = np.searchsorted(battle_item[by_item], np.arange(len(items) + 1))

    counts = bootstrap_counts(len(items), rounds, seed)
    thetas = []
    t0 = time.perf_counter()
    for r in range(rounds):
        # Gather the battles of the resampled items (each as often as it was drawn).
        drawn = np.repeat(np.arange(len(items)), counts[r])
        lengths = starts[drawn + 1] - starts[drawn]
        offsets = np.repeat(starts[drawn] - np.cumsum(lengths) + lengths, lengths)
        rows = by_item[offsets + np.arange(lengths.sum())]
        wins = np.zeros((k, k))
        np.add.at(wins, (winner[rows], loser[rows]), weight[rows])
        theta = choix.ilsr_pairwise_dense(wins)
        thetas.append(theta - theta.mean())
    return np.array(thetas), (time.perf_counter() - t0) / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer baseline rounds")
    parser.add_argument("--no-million", action="store_true", help="skip the 1,000,000 case")
    parser.add_argument("--million-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.million_child:
        million(rounds=1000, seed=0)
        return
    n_items, per_item, rounds = (2_000, 5, 200) if args.quick else (20_000, 5, 1000)
    baseline_rounds = 20 if args.quick else 100
    seed = 0

    t0 = time.perf_counter()
    annotations = generate(n_items, per_item, seed=1)
    print(f"generated {len(annotations):,} rankings of {len(SYSTEMS)} systems over "
          f"{n_items:,} items in {time.perf_counter() - t0:.1f} s (not timed below)")

    t0, c0 = time.perf_counter(), time.process_time()
    result = leaderboard(annotations, rounds=rounds, seed=seed)
    ours, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"ours: all figures, {rounds} bootstrap rounds over items: {ours:.2f} s "
          f"({ours_cpu:.2f} s of CPU)")
    rob = result["robustness"]
    print(f"  robustness: removing {rob['count']} of {rob['n_rankings']} rankings "
          f"({rob['share']:.1%}) unseats {rob['leader']} (new leader {rob['new_leader']}), "
          f"confirmed {rob['confirmed']}; tie parameters {result['tie_parameters']}")
    for e in result["systems"]:
        print(f"  {e['system']:<14} Win@1 {e['win1']:.3f} [{e['win1_ci'][0]:.3f}, "
              f"{e['win1_ci'][1]:.3f}]  Elo {e['bt_elo']:7.1f} [{e['bt_elo_ci'][0]:7.1f}, "
              f"{e['bt_elo_ci'][1]:7.1f}]  rank {e['rank_ci']}  group {e['group']}")

    t0 = time.perf_counter()
    leaderboard(annotations, rounds=rounds, seed=seed, unit="item")
    print(f"ours, per-item unit (for reference): {time.perf_counter() - t0:.2f} s")

    thetas, per_round = baseline(annotations, baseline_rounds, seed)
    base_total = per_round * rounds
    print(f"baseline: refit Bradley-Terry per round in a Python loop (choix.ilsr_pairwise_dense): "
          f"{per_round * 1000:.1f} ms/round, timed on {baseline_rounds} rounds and "
          f"extrapolated to {rounds}: {base_total:.1f} s")
    # Same resampled items for the first rounds, so the baseline's interval should be close to
    # ours (from fewer rounds, hence rougher).
    lo, hi = np.quantile(thetas, [0.025, 0.975], axis=0)
    for s, name in enumerate(SYSTEMS):
        ours_ci = next(e["bt_elo_ci"] for e in result["systems"] if e["system"] == name)
        print(f"  {name:<14} Elo interval baseline ({baseline_rounds} rounds) "
              f"[{lo[s] * 400 / np.log(10) + 1000:7.1f}, {hi[s] * 400 / np.log(10) + 1000:7.1f}]"
              f"  ours [{ours_ci[0]:7.1f}, {ours_ci[1]:7.1f}]")

    # Same point estimate on a common scale (centred log-strengths). choix fits the unpenalised
    # MLE; our prior of BT_PRIOR shifts it by far less than the tolerance printed here.
    import choix

    names, wins = pairwise_wins(annotations, list(SYSTEMS))
    theirs = choix.ilsr_pairwise_dense(wins)
    theirs -= theirs.mean()
    ours_bt = np.array([next(e["bt"] for e in result["systems"] if e["system"] == s)
                        for s in names])
    max_diff = float(np.max(np.abs(ours_bt - theirs)))
    print(f"Bradley-Terry vs choix on the same data: max |diff| {max_diff:.2e} (log scale; "
          f"our prior {BT_PRIOR} vs none)")
    ratio = base_total / ours
    print(f"speed-up: {ratio:.1f}x (baseline fits only Bradley-Terry; ours computes every figure)")
    summary = {
        "seconds": round(ours, 3),
        "ratio_vs_baseline": round(ratio, 1),
        "max_abs_diff_vs_baseline": max_diff,
        "cpu_seconds": round(ours_cpu, 3),
    }
    if not args.no_million and not args.quick:
        # A fresh process, so that its peak memory is the 1M case's alone.
        child = subprocess.run([sys.executable, __file__, "--million-child"], check=True,
                               capture_output=True, text=True)
        big = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"1,000,000 rankings over 100,000 items (generated in {big['generate_seconds']} s, "
              f"not timed): all figures, robustness, tie model, 1000 rounds: {big['seconds']} s "
              f"({big['cpu_seconds']} s of CPU), peak RSS {big['peak_rss_gb']} GiB "
              f"({big['rss_after_input_gb']} GiB after building the input)")
        print(f"  robustness: removing {big['robustness_count']} rankings "
              f"({big['robustness_share']:.1%}) makes {big['new_leader']} leader, confirmed "
              f"{big['robustness_confirmed']}; tie parameters {big['tie_parameters']}")
        summary.update(seconds_1m=big["seconds"], cpu_seconds_1m=big["cpu_seconds"],
                       peak_rss_gb_1m=big["peak_rss_gb"],
                       rss_after_input_gb_1m=big["rss_after_input_gb"])
    print("RESULT " + json.dumps(summary))


if __name__ == "__main__":
    main()
