"""Rankings as arrays: the `Annotation` record, its encoding into one row per ranking and one
column per system, the per-item unit (`combine_per_item`) and the numeric helpers all share."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, count
from operator import attrgetter
from typing import Any

import numpy as np
from scipy import sparse

UNITS = ("annotation", "item")
_EPS = 1e-9  # credits are multiples of 1/g; this only absorbs floating-point noise


@dataclass(frozen=True, slots=True)
class Annotation:
    """One annotator's ranking of one item's responses under one criterion."""

    item: str
    annotator: str
    ranking: tuple[tuple[str, ...], ...]  # tie groups, best first
    display_order: tuple[str, ...] | None = None  # system in slot 1, 2, ... as shown
    seconds: float | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Annotation:
        """Build from the import/export JSONL shape (`item_id`, `annotator`, `ranking`, ...)."""
        display = record.get("display_order")
        seconds = record.get("seconds")
        return cls(
            item=str(record["item_id"]),
            annotator=str(record["annotator"]),
            ranking=tuple(tuple(group) for group in record["ranking"]),
            display_order=None if display is None else tuple(display),
            seconds=None if seconds is None else float(seconds),
        )


# ---------------------------------------------------------------------------------------------
# Encoding: rankings -> arrays (one row per ranking, one column per system)


@dataclass
class _Table:
    systems: tuple[str, ...]
    items: tuple[str, ...]
    annotators: tuple[str, ...]
    item: np.ndarray  # (N,) item index of each ranking
    annotator: np.ndarray  # (N,) annotator index
    first: np.ndarray  # (N, K) position a of the system's tie group, 0 where not shown
    last: np.ndarray  # (N, K) position b, 0 where not shown
    slot: np.ndarray  # (N, K) display slot (0-based), -1 where unknown
    seconds: np.ndarray  # (N,) NaN where unknown

    def __post_init__(self) -> None:
        self.shown = self.first > 0
        self.k = self.last.max(axis=1) if self.last.size else np.zeros(len(self.item), np.int64)
        self.mid = (self.first + self.last) / 2.0  # 0 where not shown

    def item_matrix(self) -> sparse.csr_matrix:
        """(items x rankings) indicator: `G @ per_ranking` sums each item's rankings."""
        n = len(self.item)
        return sparse.csr_matrix(
            (np.ones(n), (self.item, np.arange(n))), shape=(len(self.items), n)
        )

    def top_credit(self) -> np.ndarray:
        """(N, K) Win@1 credit: 1/g for each member of the first tie group, else 0."""
        g = self.last - self.first + 1
        return np.where(self.first == 1, 1.0 / np.maximum(g, 1), 0.0)

    def rows(self, index: np.ndarray) -> _Table:
        """These rows, items and annotators kept as they are numbered here."""
        return _Table(
            systems=self.systems,
            items=self.items,
            annotators=self.annotators,
            item=self.item[index],
            annotator=self.annotator[index],
            first=self.first[index],
            last=self.last[index],
            slot=self.slot[index],
            seconds=self.seconds[index],
        )

    def subset(self, keep: np.ndarray) -> _Table:
        """The rankings where `keep`; items and annotators renumbered by first appearance."""
        item_ids, item = _first_appearance(self.item[keep])
        ann_ids, annotator = _first_appearance(self.annotator[keep])
        return _Table(
            systems=self.systems,
            items=tuple(self.items[i] for i in item_ids),
            annotators=tuple(self.annotators[i] for i in ann_ids),
            item=item,
            annotator=annotator,
            first=self.first[keep],
            last=self.last[keep],
            slot=self.slot[keep],
            seconds=self.seconds[keep],
        )


def _first_appearance(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct codes in order of first appearance, each element's index into them)."""
    uniq, first_at, inverse = np.unique(codes, return_index=True, return_inverse=True)
    order = np.argsort(first_at, kind="stable")
    rank = np.empty(len(uniq), np.int64)
    rank[order] = np.arange(len(uniq))
    return uniq[order], rank[np.asarray(inverse).ravel()]


_ITEM, _ANNOTATOR, _RANKING, _DISPLAY, _SECONDS = map(
    attrgetter, ("item", "annotator", "ranking", "display_order", "seconds"))


def _intern(values: Iterable, n: int) -> tuple[list, np.ndarray]:
    """(distinct values in order of first appearance, each value's index into them).

    One C-level pass of dict look-ups: `setdefault` files a new value under the running count,
    so the tags grow with first appearance and only need renumbering 0, 1, 2, ...
    """
    seen: dict = {}
    tags = np.fromiter(map(seen.setdefault, values, count()), np.int64, count=n)
    renumber = np.zeros(n, np.int64)
    renumber[np.fromiter(seen.values(), np.int64, count=len(seen))] = np.arange(len(seen))
    return list(seen), renumber[tags]


def _intern_nested(values: Iterable, n: int) -> tuple[list, np.ndarray]:
    """`_intern` for rankings and display orders, which may arrive as (unhashable) lists."""
    values = list(values)
    try:
        return _intern(values, n)
    except TypeError:
        return _intern([None if v is None else tuple(
            g if isinstance(g, str) else tuple(g) for g in v) for v in values], n)


def _system_names(rankings: Sequence, systems: Sequence[str] | None) -> list[str]:
    if systems is None:
        return sorted({name for ranking in rankings for group in ranking for name in group})
    names = list(systems)
    if len(set(names)) != len(names):
        raise ValueError("systems lists a name twice")
    return names


def _indices(values: Iterable[str], index: dict[str, int], what: str) -> np.ndarray:
    try:
        return np.fromiter(map(index.__getitem__, values), np.int64)
    except KeyError as err:
        raise ValueError(f"{what} names unknown system {err.args[0]!r}") from None


def _encode(annotations: Sequence[Annotation], systems: Sequence[str] | None) -> _Table:
    n_rows = len(annotations)
    # The input is Python objects, so one pass over them is unavoidable; it is kept to C-level
    # iteration (map, dict look-ups). A study holds far fewer distinct rankings and display
    # orders than rankings (4,683 weak orders of six systems), so those are decoded once each
    # and the rows then pick theirs up by index.
    items, item = _intern(map(_ITEM, annotations), n_rows)
    annotators, annotator = _intern(map(_ANNOTATOR, annotations), n_rows)
    seconds = np.fromiter(map(_SECONDS, annotations), np.float64, count=n_rows)  # None: NaN
    rankings, r_code = _intern_nested(map(_RANKING, annotations), n_rows)
    displays, d_code = _intern_nested(map(_DISPLAY, annotations), n_rows)
    names = _system_names(rankings, systems)
    index = {name: i for i, name in enumerate(names)}

    def where(bad: np.ndarray) -> str:
        # Distinct rankings are numbered by first appearance, so the first row holding any bad
        # one holds the lowest-numbered bad one.
        n = int(np.argmax(r_code == int(np.argmax(bad))))
        return f"ranking {n} (item {annotations[n].item!r})"

    u_first, u_last = _decode_rankings(rankings, index, len(names), where)
    first, last = u_first[r_code], u_last[r_code]
    u_slot = _decode_displays(displays, index, len(names))
    slot = u_slot[d_code]
    # A display order must be a permutation of the ranked systems: same set, no repeats.
    if len(names) <= 62:  # compare the two sets as bit masks, one number a row
        bits = np.int64(1) << np.arange(len(names), dtype=np.int64)
        differ = ((u_first > 0) @ bits)[r_code] != ((u_slot >= 0) @ bits)[d_code]
    else:
        differ = ((slot >= 0) != (first > 0)).any(1)
    bad = (u_slot == -2).any(1)[d_code] | ((u_slot >= 0).any(1)[d_code] & differ)
    if bad.any():
        n = int(np.argmax(bad))
        raise ValueError(
            f"ranking {n} (item {annotations[n].item!r}): display order is not a "
            "permutation of the ranked systems"
        )
    return _Table(
        systems=tuple(names),
        items=tuple(items),
        annotators=tuple(annotators),
        item=item,
        annotator=annotator,
        first=first,
        last=last,
        slot=slot,
        seconds=seconds,
    )


def _decode_rankings(rankings: Sequence, index: dict[str, int], n_sys: int,
                     where: Callable[[np.ndarray], str]) -> tuple[np.ndarray, np.ndarray]:
    """(U, K) positions a and b of each distinct ranking's systems (0 where not shown);
    `where(bad)` names the first input row whose ranking is one of the bad ones."""
    n_rows = len(rankings)
    n_groups = np.fromiter(map(len, rankings), np.int64, count=n_rows)
    sizes = np.fromiter(map(len, chain.from_iterable(rankings)), np.int64)
    cols = _indices(chain.from_iterable(chain.from_iterable(rankings)), index, "a ranking")
    group_row = np.repeat(np.arange(n_rows), n_groups)
    k = np.bincount(group_row, weights=sizes, minlength=n_rows).astype(np.int64)
    bad = (k == 0) | (np.bincount(group_row, weights=sizes == 0, minlength=n_rows) > 0)
    if bad.any():
        raise ValueError(f"{where(bad)} is empty or has an empty tie group")
    ends = np.cumsum(sizes)
    row_start = np.cumsum(k) - k  # names before this row
    group_first = ends - sizes - row_start[group_row] + 1
    rows = np.repeat(group_row, sizes)
    seen = np.bincount(rows * n_sys + cols, minlength=n_rows * n_sys).reshape(n_rows, n_sys)
    if seen.size and seen.max() > 1:
        raise ValueError(f"{where((seen > 1).any(1))} names a system twice")
    first = np.zeros((n_rows, n_sys), np.int64)
    last = np.zeros((n_rows, n_sys), np.int64)
    first[rows, cols] = np.repeat(group_first, sizes)
    last[rows, cols] = np.repeat(group_first + sizes - 1, sizes)
    return first, last


def _decode_displays(displays: Sequence, index: dict[str, int], n_sys: int) -> np.ndarray:
    """(D, K) display slot of each system (0-based) in each distinct display order; -1 where
    not displayed, and -2 throughout a display order that names a system twice."""
    displays = [d or () for d in displays]
    n_rows = len(displays)
    slot = np.full((n_rows, n_sys), -1, np.int64)
    d_len = np.fromiter(map(len, displays), np.int64, count=n_rows)
    if d_len.any():
        d_cols = _indices(chain.from_iterable(displays), index, "a display order")
        d_rows = np.repeat(np.arange(n_rows), d_len)
        d_seen = np.bincount(d_rows * n_sys + d_cols, minlength=n_rows * n_sys)
        slot[d_rows, d_cols] = np.arange(len(d_rows)) - np.repeat(np.cumsum(d_len) - d_len, d_len)
        slot[(d_seen.reshape(n_rows, n_sys) > 1).any(1)] = -2
    return slot


def _combine_table(t: _Table) -> _Table:
    """One row per item: systems ordered by mean position over the item's rankings, ties kept."""
    n_items, n_sys = len(t.items), len(t.systems)
    g_mat = t.item_matrix()
    shown = t.shown
    # Sums of half-integers are exact in floating point, and equal rationals divide to equal
    # floats, so exact equality below finds exactly the mathematical ties.
    total = np.asarray(g_mat @ (t.mid * shown))
    count = np.asarray(g_mat @ shown.astype(np.float64))
    present = count > 0
    mean = np.where(present, total / np.where(present, count, 1), np.inf)
    both = present[:, :, None] & present[:, None, :]
    better = both & (mean[:, None, :] < mean[:, :, None])  # [i, s, t]: t strictly ahead of s
    not_worse = both & (mean[:, None, :] <= mean[:, :, None])
    first = np.where(present, 1 + better.sum(2), 0)
    last = np.where(present, not_worse.sum(2), 0)
    return _Table(
        systems=t.systems,
        items=t.items,
        annotators=("consensus",),
        item=np.arange(n_items),
        annotator=np.zeros(n_items, np.int64),
        first=first,
        last=last,
        slot=np.full((n_items, n_sys), -1, np.int64),
        seconds=np.full(n_items, np.nan),
    )


def _table(annotations, systems, unit: str) -> _Table:
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
    t = _encode(list(annotations), systems)
    return _combine_table(t) if unit == "item" else t


def combine_per_item(
    annotations: Iterable[Annotation], systems: Sequence[str] | None = None
) -> list[Annotation]:
    """Each item's rankings combined into one (annotator "consensus") by mean position (Borda).

    A system's mean position is over the rankings that showed it; equal means stay tied.
    """
    t = _table(annotations, systems, "item")
    out = []
    for i, name in enumerate(t.items):
        groups: dict[int, list[str]] = {}
        for s in np.flatnonzero(t.first[i]):
            groups.setdefault(int(t.first[i, s]), []).append(t.systems[s])
        ranking = tuple(tuple(groups[a]) for a in sorted(groups))
        out.append(Annotation(item=name, annotator="consensus", ranking=ranking))
    return out


# ---------------------------------------------------------------------------------------------
# Shared numeric helpers


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def _num(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x
