"""Geometry of the leaderboard's pictures (inline SVG), computed from one criterion's figures.

Returns plain dicts of coordinates and labels; templates draw them and escape every name.
"""
import math

from annotations.formatting import percent

WIDTH = 540
LABEL_W = 150  # room for system names left of a plot
ROW_H = 26
# Value labels are 11 px text: about this wide per character (digits, space, "%"), a bit generous.
VALUE_CHAR_W = 7
# Shares of 1st, 2nd, ... place: dark to light, readable as "better is darker".
PLACE_COLOURS = ["#1d3f8f", "#2f5bd3", "#5b82e0", "#8aa7ea", "#b5c8f2", "#d6e0f7", "#e7ecf8",
                 "#eef1f8", "#f2f4f9", "#f5f6fa", "#f7f8fb", "#f9fafc"]


def _short(name, limit=20):
    """SVG text does not wrap or clip: long names are cut (the full name is in the tooltip)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _nice_max(value):
    """The axis end: the next tenth above value (at least 0.1, at most 1)."""
    return min(1.0, max(0.1, math.ceil(value * 10 - 1e-9) / 10))


def _ticks(xmax, x0, width):
    step = 0.1 if xmax <= 0.5 else 0.2
    ticks, v = [], 0.0
    while v <= xmax + 1e-9:
        ticks.append({"x": round(x0 + v / xmax * width, 1), "label": percent(v)})
        v += step
    return ticks


def win1_chart(board):
    """Dots at Win@1 with whiskers for the 95 % interval, and the chance level as a dashed line."""
    rows = [s for s in board["systems"] if s["win1"] is not None]
    if not rows:
        return None
    chance = board["chance_win1"] or 0.0
    top_value = max([chance] + [s["win1_ci"][1] if s["win1_ci"] else s["win1"] for s in rows])
    xmax = _nice_max(top_value * 1.05)
    plot_w = WIDTH - LABEL_W - 70
    top = 12

    def x(v):
        return round(LABEL_W + v / xmax * plot_w, 1)

    chance_x = x(chance) if board["chance_win1"] else None

    def label_x(hi, label):
        """Right of the whisker; where the label would cross the chance line, right of the line."""
        start = x(hi) + 6
        end = start + len(label) * VALUE_CHAR_W
        if chance_x is not None and start - 4 <= chance_x <= end + 4:
            start = chance_x + 5
        return round(start, 1)

    out = []
    for i, s in enumerate(rows):
        ci = s["win1_ci"] or [s["win1"], s["win1"]]
        label = percent(s["win1"], 1)
        out.append({"name": s["system"], "short": _short(s["system"]), "y": top + i * ROW_H + ROW_H / 2,
                    "text_y": top + i * ROW_H + ROW_H / 2 + 4, "cap0": top + i * ROW_H + ROW_H / 2 - 5,
                    "cap1": top + i * ROW_H + ROW_H / 2 + 5, "x": x(s["win1"]),
                    "lo": x(ci[0]), "hi": x(ci[1]), "label": label, "label_x": label_x(ci[1], label),
                    "title": f"{s['system']}: Win@1 {percent(s['win1'], 1)}, 95 % interval "
                             f"{percent(ci[0], 1)} to {percent(ci[1], 1)}"})
    bottom = top + len(rows) * ROW_H
    return {"width": WIDTH, "height": bottom + 40, "rows": out, "top": top, "bottom": bottom,
            "tick_y": bottom + 15, "chance_y": bottom + 31,
            "x0": LABEL_W, "x1": LABEL_W + plot_w, "name_x": LABEL_W - 8, "ticks": _ticks(xmax, LABEL_W, plot_w),
            "chance": {"x": chance_x, "label": f"chance {percent(chance, 1)}"} if chance_x is not None else None}


def rank_distribution(board):
    """Per system a stacked bar: the share of its annotations in 1st, 2nd, ... place."""
    rows = [s for s in board["systems"] if s["n"] and s["win_at"]]
    if not rows:
        return None
    places = max(len(s["win_at"]) for s in rows)
    plot_w = WIDTH - LABEL_W - 20
    top = 12
    out = []
    for i, s in enumerate(rows):
        previous, x, segments = 0.0, float(LABEL_W), []
        for k in range(1, places + 1):
            cumulative = s["win_at"].get(str(k))
            if cumulative is None:
                cumulative = previous
            share = max(0.0, cumulative - previous)
            previous = cumulative
            w = share * plot_w
            if w > 0:
                segments.append({"x": round(x, 1), "w": round(w, 1), "colour": PLACE_COLOURS[min(k - 1, 11)],
                                 "text_x": round(x + w / 2, 1),
                                 "ink": "#fff" if k <= 2 else "#1d2330",
                                 "label": percent(share, sign="") if w >= 26 else "",
                                 "title": f"{s['system']}: {_ordinal(k)} place in {percent(share, 1)}"})
            x += w
        y = top + i * ROW_H
        out.append({"name": s["system"], "short": _short(s["system"]), "y": y, "text_y": y + (ROW_H - 8) / 2 + 4,
                    "segments": segments})
    bottom = top + len(rows) * ROW_H
    legend_y = bottom + 8
    legend = [{"x": LABEL_W + (k - 1) * 56, "text_x": LABEL_W + (k - 1) * 56 + 16,
               "colour": PLACE_COLOURS[min(k - 1, 11)], "label": _ordinal(k)} for k in range(1, places + 1)]
    return {"width": WIDTH, "height": bottom + 30, "rows": out, "bar_h": ROW_H - 8, "legend": legend,
            "legend_y": legend_y, "legend_text_y": legend_y + 10, "legend_label_x": LABEL_W - 8}


def _ordinal(k):
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def _diverging(rate):
    """Win rate 0 (red) .. 0.5 (white) .. 1 (blue)."""
    if rate is None:
        return "#f1f3f7"
    low, mid, high = (196, 57, 43), (247, 247, 247), (47, 91, 211)
    t = abs(rate - 0.5) * 2
    end = high if rate >= 0.5 else low
    rgb = [round(m + (e - m) * t) for m, e in zip(mid, end)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def heatmap(board):
    """Pairwise win rates: row system against column system (1 above, 0.5 tied, 0 below)."""
    pairwise = board["pairwise"]
    names = pairwise["systems"]
    keep = [i for i, s in enumerate(board["systems"]) if s["n"]]
    if len(keep) < 2:
        return None
    cell = 40
    left, top = 150, 22
    cells = []
    for r, i in enumerate(keep):
        for c, j in enumerate(keep):
            rate = pairwise["win_rate"][i][j]
            count = pairwise["counts"][i][j]
            if i == j:
                continue
            strong = rate is not None and abs(rate - 0.5) > 0.3
            cells.append({"x": left + c * cell, "y": top + r * cell, "colour": _diverging(rate),
                          "text_x": left + c * cell + cell / 2 - 1, "text_y": top + r * cell + cell / 2 + 4,
                          "ink": "#fff" if strong else "#1d2330",
                          "label": percent(rate, sign=""),
                          "title": f"{names[i]} above {names[j]}: {percent(rate, 1)} of {count} comparisons"})
    size = len(keep) * cell
    return {"width": left + size + 20, "height": top + size + 12, "cell": cell, "inner": cell - 2, "cells": cells,
            "rows": [{"number": r + 1, "name": names[i], "short": _short(names[i]),
                      "y": top + r * cell + cell / 2 + 4} for r, i in enumerate(keep)],
            "columns": [{"number": r + 1, "name": names[i], "x": left + r * cell + cell / 2 - 1}
                        for r, i in enumerate(keep)],
            "diagonal": [{"x": left + r * cell, "y": top + r * cell} for r in range(len(keep))],
            "top": top, "column_y": top - 7, "left": left, "label_x": left - 8, "size": size}


def histogram(summary):
    """Kendall's W per item: a 10-bin histogram on [0, 1] with the mean marked."""
    if not summary or not summary.get("histogram"):
        return None
    counts = summary["histogram"]["counts"]
    peak = max(counts) or 1
    width, height, left, bottom = 300, 130, 30, 100
    bin_w = (width - left - 10) / len(counts)
    bars = [{"x": round(left + i * bin_w + 1, 1), "w": round(bin_w - 2, 1),
             "y": round(bottom - c / peak * 80, 1), "h": round(c / peak * 80, 1), "count": c,
             "title": f"W in [{i / 10:.1f}, {(i + 1) / 10:.1f}): {c} item{'s' if c != 1 else ''}"}
            for i, c in enumerate(counts)]
    mean_x = round(left + summary["mean"] * (width - left - 10), 1)
    return {"width": width, "height": height, "bars": bars, "bottom": bottom, "left": left,
            "right": width - 10, "mean_x": mean_x, "mean": f"{summary['mean']:.2f}", "peak": peak,
            "axis_y": bottom + 14, "middle": (left + width - 10) / 2, "peak_y": bottom - 80 + 4,
            "peak_x": left - 4}


def position_bias(bias):
    """Share of first places per display slot against the share expected without bias."""
    slots = bias["slots"]
    if not bias["n"] or not slots:
        return None
    values = [v for s in slots for v in (s["share"], s["expected"]) if v is not None]
    ymax = _nice_max(max(values) * 1.1)
    width, height, left, bottom, plot_h = 300, 150, 40, 118, 100
    slot_w = (width - left - 10) / len(slots)
    bars = []
    for i, s in enumerate(slots):
        share = s["share"] or 0.0
        h = share / ymax * plot_h
        expected_y = bottom - (s["expected"] or 0.0) / ymax * plot_h
        bars.append({"x": round(left + i * slot_w + slot_w * 0.2, 1), "w": round(slot_w * 0.6, 1),
                     "y": round(bottom - h, 1), "h": round(h, 1), "slot": s["slot"],
                     "label_x": round(left + i * slot_w + slot_w / 2, 1), "value_y": round(bottom - h - 4, 1),
                     "value": percent(share, sign=""),
                     "expected_y": round(expected_y, 1),
                     "expected_x0": round(left + i * slot_w + slot_w * 0.1, 1),
                     "expected_x1": round(left + i * slot_w + slot_w * 0.9, 1),
                     "title": f"slot {s['slot']}: first place in {percent(s['share'], 1)} "
                              f"(expected {percent(s['expected'], 1)})"})
    ticks = [{"y": round(bottom - v / ymax * plot_h, 1), "text_y": round(bottom - v / ymax * plot_h + 4, 1),
              "label": percent(v)} for v in (0, ymax / 2, ymax)]
    return {"width": width, "height": height, "bars": bars, "bottom": bottom, "left": left,
            "right": width - 10, "ticks": ticks, "axis_y": bottom + 14, "tick_x": left - 4}


def top1(agreement):
    """Top-1 agreement beside its chance level, as two bars on [0, 1]."""
    if agreement["top1_agreement"] is None:
        return None
    width, left, plot_w = 300, 100, 140
    rows = [("observed", agreement["top1_agreement"]), ("chance", agreement["top1_chance"] or 0.0)]
    return {"width": width, "height": 58, "left": left,
            "rows": [{"label": label, "y": 6 + i * 28, "text_y": 6 + i * 28 + 14, "w": round(v * plot_w, 1),
                      "value": percent(v, 1), "value_x": round(left + v * plot_w + 6, 1),
                      "colour": "#2f5bd3" if label == "observed" else "#b8c0cc"}
                     for i, (label, v) in enumerate(rows)], "label_x": left - 8}


def charts(board):
    return {
        "win1": win1_chart(board),
        "ranks": rank_distribution(board),
        "heatmap": heatmap(board),
        "kendall": histogram(board["agreement"]["kendalls_w"]),
        "position": position_bias(board["position_bias"]),
        "top1": top1(board["agreement"]),
    }


def _signed(value):
    return f"{value * 100:+.0f}" if value else "0"


def confidence_sequence(signal):
    """The stop signal's confidence sequence over items: the band of plausible mean Win@1
    differences of #1 over #2 after each item, the running mean, and zero (no difference).
    The band leaving zero is the signal; it only narrows."""
    path = signal.get("path")
    if not path or not path["items"]:
        return None
    width, height, left, right, top, bottom = WIDTH, 190, 52, WIDTH - 16, 12, 150
    n_max = max(path["items"][-1], 2)
    lows, highs = path["lower"], path["upper"]
    # The y axis spans the band after the first few items (the first ones are near [-1, 1]).
    start = min(len(lows) - 1, max(0, len(lows) // 10))
    span = max(max(abs(v) for v in lows[start:] + highs[start:]), 0.05)
    ymax = min(1.0, math.ceil(span * 1.1 * 20) / 20)

    def x(n):
        return round(left + (n - 1) / (n_max - 1) * (right - left), 1)

    def y(v):
        v = max(-ymax, min(ymax, v))
        return round(top + (ymax - v) / (2 * ymax) * (bottom - top), 1)

    items = path["items"]
    upper = [f"{x(n)},{y(v)}" for n, v in zip(items, highs)]
    lower = [f"{x(n)},{y(v)}" for n, v in zip(items, lows)]
    band = " ".join(upper + lower[::-1])
    mean = " ".join(f"{x(n)},{y(v)}" for n, v in zip(items, path["mean"]))
    ticks = [{"y": y(v), "text_y": round(y(v) + 4, 1), "label": _signed(v)}
             for v in (ymax, ymax / 2, 0.0, -ymax / 2, -ymax)]
    x_ticks = sorted({1, max(1, n_max // 2), n_max})
    stopped = signal.get("stopped_at")
    return {"width": width, "height": height, "left": left, "right": right, "top": top, "bottom": bottom,
            "band": band, "mean": mean, "zero_y": y(0.0), "ticks": ticks, "tick_x": left - 6,
            "x_ticks": [{"x": x(n), "label": f"{n:,}"} for n in x_ticks], "axis_y": bottom + 16,
            "title_y": bottom + 34, "middle": round((left + right) / 2, 1),
            "stop": {"x": x(stopped), "label": f"separated after {stopped:,} items"} if stopped else None}

