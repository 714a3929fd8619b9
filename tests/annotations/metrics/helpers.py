"""Shared by the metrics tests: the `ann` shorthand, the worked example of metrics.md, random
studies, a Plackett-Luce simulator and the Hypothesis strategies for whole studies."""

import numpy as np
import pytest
from hypothesis import strategies as st

from annotations.metrics import Annotation


def ann(item, annotator, *groups, display=None, seconds=None):
    return Annotation(
        item=item,
        annotator=annotator,
        ranking=tuple(tuple(g) for g in groups),
        display_order=None if display is None else tuple(display),
        seconds=seconds,
    )


# The example of metrics.md ([[A], [C, D], [B]]) plus three more rankings over two items.
EXAMPLE = [
    ann("p1", "a1", "A", "CD", "B", display="BACD", seconds=41.5),
    ann("p1", "a2", "C", "A", "BD", display="ABCD", seconds=30.0),
    ann("p2", "a1", "AB", "C", "D", seconds=20.0),
    ann("p2", "a3", "A", "B", "C", "D", display="DCBA"),
]


def random_study(n_items=25, per_item=3, systems="ABCD", seed=0):
    """Uniformly random weak orderings with display orders: enough items for the bootstrap to
    have many distinct rounds."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_items):
        for j in range(per_item):
            order = [str(x) for x in rng.permutation(list(systems))]
            groups = [[order[0]]]
            for name in order[1:]:
                if rng.random() < 0.25:  # tied with the one above
                    groups[-1].append(name)
                else:
                    groups.append([name])
            display = [str(x) for x in rng.permutation(list(systems))]
            out.append(ann(f"i{i}", f"a{j}", *groups, display=display,
                           seconds=float(rng.uniform(5, 60))))
    return out


def approx(x, tol=1e-12):
    return pytest.approx(x, abs=tol)


def simulate_pl(theta, n_items, per_item, rng):
    """Plackett-Luce rankings by the Gumbel-max trick (no ties, every system shown)."""
    names = [f"s{i}" for i in range(len(theta))]
    order = np.argsort(-(theta + rng.gumbel(size=(n_items * per_item, len(theta)))), axis=1)
    return [Annotation(f"i{r // per_item}", f"a{r % per_item}",
                       tuple((names[s],) for s in row)) for r, row in enumerate(order)]


NAMES = ["s0", "s1", "s2", "s3", "s4"]


@st.composite
def rankings(draw, systems, everyone=False):
    shown = list(systems) if everyone else draw(
        st.lists(st.sampled_from(systems), min_size=1, max_size=len(systems), unique=True))
    order = draw(st.permutations(shown))
    groups = [[order[0]]]
    for name in order[1:]:
        if draw(st.booleans()) and draw(st.booleans()):  # a tie one time in four
            groups[-1].append(name)
        else:
            groups.append([name])
    display = draw(st.one_of(st.none(), st.permutations(shown)))
    return Annotation(
        item=draw(st.sampled_from(["p1", "p2", "p3", "p4"])),
        annotator=draw(st.sampled_from(["a1", "a2", "a3"])),
        ranking=tuple(tuple(g) for g in groups),
        display_order=None if display is None else tuple(display),
        seconds=draw(st.one_of(st.none(), st.floats(1, 100))),
    )


@st.composite
def studies(draw, everyone=False, min_size=1):
    systems = NAMES[:draw(st.integers(1, len(NAMES)))]
    data = draw(st.lists(rankings(systems, everyone), min_size=min_size, max_size=10))
    return systems, data
