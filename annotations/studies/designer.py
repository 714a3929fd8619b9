"""The study designer (design.md §1) for the web form and the API alike: the researcher's inputs and
their limits (one home for both), the simulated grid from metrics.design_grid, cached, and what a
page needs to show it: the recommendation in words and the plot's geometry.
"""
import hashlib
import json
from math import comb

from django.core.cache import cache

from annotations import metrics
from annotations.formatting import percent

# The Empathy-R1 setting (6 systems, Win@1 44.3 % against 16.3 %) as the form's starting point.
DEFAULTS = {"n_systems": 6, "responses_per_screen": 6, "criteria": 1, "best_win1": 44.3, "next_win1": 16.3,
            "tie_rate": 10.0, "reliability_sd": 0.5, "seconds_per_screen": 60.0, "target": 80.0,
            "alpha": 0.05, "items": "25, 50, 100, 200", "per_item": "1, 3, 5, 10"}
LIMITS = {"n_systems": (2, 12), "responses_per_screen": (2, 12), "criteria": (1, 10), "best_win1": (1, 99),
          "next_win1": (0.5, 98), "tie_rate": (0, 50), "reliability_sd": (0, 1.5),
          "seconds_per_screen": (5, 1800), "target": (50, 99), "alpha": (0.001, 0.2)}
ITEMS_RANGE = (5, 2000)
PER_ITEM_RANGE = (1, 20)
MAX_VALUES = 5  # numbers of items (and of annotations per item) tried
# Different screens the Win@1 -> worths solve averages over; beyond this it takes seconds.
MAX_SCREEN_SETS = 120
# Simulation work (sum of items x sum of annotations x systems, x systems again when screens show a
# subset): about 3 s on a busy machine at this bound.
MAX_WORK = 400_000
SIMULATED_STUDIES = 200
SEED = 0
CACHE_SECONDS = 24 * 3600

UNREACHABLE = ("no system strengths give these Win@1 values at this tie rate and reliability spread: many ties "
               "or careless annotators cap how often the best system can come first; lower the tie rate, the "
               "spread or the best system's Win@1")
RELIABILITY_HELP = (
    "How much annotators differ in how consistently they rank. 0: all equally careful. 0.5 "
    "(typical, the default): most annotators are between 0.4 and 2.7 times as decisive as the "
    "typical one. 1: some annotators rank close to at random. More spread needs more annotations.")


def parse_counts(text, low, high):
    """'25, 50, 100' -> [25, 50, 100] (sorted, distinct); ValueError with a sentence when not."""
    parts = [p for p in str(text).replace(";", ",").replace(" ", ",").split(",") if p]
    if not parts:
        raise ValueError("give at least one number")
    try:
        values = sorted({int(p) for p in parts})
    except ValueError:
        raise ValueError("whole numbers separated by commas, e.g. 25, 50, 100") from None
    if len(values) > MAX_VALUES:
        raise ValueError(f"at most {MAX_VALUES} numbers")
    if values[0] < low or values[-1] > high:
        raise ValueError(f"each between {low} and {high}")
    return values


def check(values):
    """Cross-field checks of cleaned inputs (percentages as 0-100 numbers, lists parsed):
    {field: message} for every problem, empty when the design can be simulated."""
    errors = {}
    n_sys, k = values["n_systems"], values["responses_per_screen"]
    best, nxt = values["best_win1"], values["next_win1"]
    if k > n_sys:
        errors["responses_per_screen"] = f"at most the number of systems ({n_sys})"
    elif comb(n_sys, k) > MAX_SCREEN_SETS:
        errors["responses_per_screen"] = (
            f"{n_sys} systems shown {k} at a time make {comb(n_sys, k):,} different screens, more than the "
            f"designer averages over quickly ({MAX_SCREEN_SETS}); plan with fewer systems or show "
            "more or fewer responses per screen")
    total = 100 * n_sys / min(k, n_sys)  # Win@1 values add up to K/k
    if nxt >= best:
        errors["next_win1"] = "the runner-up's Win@1 must be below the best system's"
    elif n_sys == 2 and abs(best + nxt - total) > 0.05:
        errors["next_win1"] = f"with two systems Win@1 values add up to 100 %: the runner-up has {100 - best:g} %"
    elif n_sys > 2:
        rest = (total - best - nxt) / (n_sys - 2)
        if rest <= 0:
            errors["best_win1"] = (f"best and runner-up together leave nothing for the other {n_sys - 2} systems "
                                   f"(with {k} responses per screen the Win@1 values add up to {total:g} %)")
        elif rest > nxt + 1e-9:
            errors["next_win1"] = (f"the other {n_sys - 2} systems would each get {rest:.1f} %, more than the "
                                   f"runner-up's {nxt:g} %: raise the runner-up's Win@1 or the best's")
    if "items" in values and "per_item" in values and not errors:
        work = sum(values["items"]) * sum(values["per_item"]) * n_sys * (n_sys if k < n_sys else 1)
        if work > MAX_WORK:
            errors["items"] = ("this grid is too large to simulate while you wait: try fewer or smaller "
                               "numbers of items or annotations per item, or fewer systems")
    return errors


def _key(values):
    return "design:" + hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def grid(values):
    """metrics.design_grid for checked inputs, cached by its inputs (the simulation is seeded, so
    equal inputs give the same grid). Raises ValueError when no worths give the stated Win@1."""
    key = _key(values)
    result = cache.get(key)
    if result is None:
        result = metrics.design_grid(
            [values["best_win1"] / 100, values["next_win1"] / 100], values["n_systems"],
            values["responses_per_screen"], items=values["items"], per_item=values["per_item"],
            tie_rate=values["tie_rate"] / 100, reliability_sd=values["reliability_sd"],
            seconds_per_screen=values["seconds_per_screen"], alpha=values["alpha"],
            target=values["target"] / 100, n_studies=SIMULATED_STUDIES, seed=SEED)
        result["criteria"] = values["criteria"]
        result["stated_win1"] = [values["best_win1"] / 100, values["next_win1"] / 100]
        cache.set(key, result, CACHE_SECONDS)
    return result


def explain(result):
    """The recommendation in plain words: a list of sentences."""
    cells, rec = result["cells"], result["recommended"]
    target, alpha = percent(result["target"]), result["alpha"]
    best, nxt = (percent(v, 1) for v in result["stated_win1"])
    words = [f"Each cell simulates {result['n_studies']} studies of {result['n_systems']} systems, "
             f"{result['k']} responses per screen, in which the best system has a Win@1 of {best} and the "
             f"runner-up {nxt}, and analyses each as the leaderboard does (sign tests over items, "
             f"Holm-corrected, α = {alpha:g})."]
    if rec is None:
        top = max(cells, key=lambda c: (c["p_separated"], -c["rankings"]))
        words.append(f"No design on this grid reaches {target}: the best, {top['items']} items × "
                     f"{top['per_item']} annotations, separates #1 from #2 in {percent(top['p_separated'])} "
                     "of simulated studies. Try more items, or check that the effect you expect is realistic.")
        return words
    words.append(f"The cheapest design that reaches {target} is {rec['items']} items with {rec['per_item']} "
                 f"annotation{'s' if rec['per_item'] != 1 else ''} each: {rec['rankings']:,} screens "
                 f"(about {rec['hours']:.1f} annotator-hours). In {percent(rec['p_separated'])} of simulated "
                 "studies it named the true best system first and separated it from the runner-up; its 95 % "
                 f"interval on the best system's Win@1 is about ±{percent(rec['ci_width'] / 2, 1, '')} points.")
    pair = _same_budget(cells, rec["rankings"])
    if pair:
        more, fewer = pair
        verdict = ("more items with fewer annotations each wins, because items, not annotators, are what "
                   "the analysis resamples" if more["p_separated"] >= fewer["p_separated"] else
                   "here more annotations per item did better, which happens when annotators disagree a lot")
        words.append(f"At the same budget of {more['rankings']:,} screens, {more['items']} items × {more['per_item']} "
                     f"separates in {percent(more['p_separated'])} and {fewer['items']} items × {fewer['per_item']} "
                     f"in {percent(fewer['p_separated'])}: {verdict}.")
    if result["criteria"] > 1:
        words.append(f"With {result['criteria']} criteria each screen gives {result['criteria']} rankings, one per "
                     "criterion; the chance above holds for each criterion that shows the effect you stated.")
    return words


def _same_budget(cells, rankings):
    """Two cells of equal cost (more items first), the budget nearest `rankings`; None if none."""
    pairs = [(a, b) for a in cells for b in cells if a["rankings"] == b["rankings"] and a["items"] > b["items"]]
    if not pairs:
        return None
    return min(pairs, key=lambda p: (abs(p[0]["rankings"] - rankings), p[0]["rankings"]))


WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 560, 250, 48, 140, 14, 200
COLOURS = ["#1d3f8f", "#2f5bd3", "#5b82e0", "#8aa7ea", "#b5c8f2"]


def chart(result):
    """Geometry of the plot: P(separate #1 from #2) against items, one line per annotations per
    item, the target as a dashed line and the recommended cell ringed."""
    cells = result["cells"]
    items = sorted({c["items"] for c in cells})
    per = sorted({c["per_item"] for c in cells})
    plot_w, plot_h = WIDTH - LEFT - RIGHT, BOTTOM - TOP

    def x(n):
        return round(LEFT + (items.index(n) / max(len(items) - 1, 1)) * plot_w, 1)

    def y(p):
        return round(BOTTOM - p * plot_h, 1)

    lines = []
    for i, r in enumerate(per):
        row = sorted((c for c in cells if c["per_item"] == r), key=lambda c: c["items"])
        colour = COLOURS[min(i, len(COLOURS) - 1)]
        lines.append({"per_item": r, "colour": colour,
                      "points": " ".join(f"{x(c['items'])},{y(c['p_separated'])}" for c in row),
                      "dots": [{"x": x(c["items"]), "y": y(c["p_separated"]),
                                "title": f"{c['items']} items × {r}: {percent(c['p_separated'])} "
                                         f"({c['rankings']:,} screens)"} for c in row],
                      "legend_y": TOP + 8 + i * 18, "legend_text_y": TOP + 12 + i * 18})
    rec = result["recommended"]
    return {"width": WIDTH, "height": HEIGHT, "left": LEFT, "right": LEFT + plot_w, "top": TOP, "bottom": BOTTOM,
            "lines": lines, "target_y": y(result["target"]), "target_label": f"target {percent(result['target'])}",
            "ticks": [{"y": y(v), "text_y": y(v) + 4, "label": percent(v)} for v in (0, 0.25, 0.5, 0.75, 1)],
            "x_ticks": [{"x": x(n), "label": f"{n:,}"} for n in items], "axis_y": BOTTOM + 16,
            "title_y": BOTTOM + 36, "middle": round(LEFT + plot_w / 2, 1), "tick_x": LEFT - 6,
            "legend_x": LEFT + plot_w + 16, "legend_text_x": LEFT + plot_w + 40,
            "recommended": {"x": x(rec["items"]), "y": y(rec["p_separated"])} if rec else None}
