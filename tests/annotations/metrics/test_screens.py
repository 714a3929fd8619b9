"""Balanced screens when systems outnumber slots (annotations.metrics.screens): pair
co-occurrences and system-by-slot counts stay close, and the balance measures read them."""

import pytest

from annotations.metrics import balanced_screens, screen_balance


def names(n):
    return [f"s{i}" for i in range(n)]


@pytest.mark.parametrize("n_sys, k, n_screens", [(6, 4, 60), (6, 4, 37), (8, 3, 56),
                                                 (8, 3, 200), (10, 4, 150), (20, 6, 300),
                                                 (6, 6, 60), (5, 2, 100)])
def test_pairs_and_slots_stay_balanced(n_sys, k, n_screens):
    screens = balanced_screens(names(n_sys), k, n_screens, seed=1)
    assert len(screens) == n_screens
    assert all(len(s) == k and len(set(s)) == k for s in screens)
    bal = screen_balance(screens, names(n_sys))
    # Greedy cannot always keep pairs within one (no balanced design exists for most
    # n_screens); it keeps them within two (three at 20 systems) and per-system counts within
    # one (two at 20 systems, where the subset search is greedy from the least-shown systems).
    assert bal["shown"]["max"] - bal["shown"]["min"] <= (2 if n_sys == 20 else 1)
    assert bal["pair_counts"]["max"] - bal["pair_counts"]["min"] <= (3 if n_sys == 20 else 2)
    assert bal["slot_counts"]["max"] - bal["slot_counts"]["min"] <= 2
    assert bal["pair_counts"]["ratio"] <= 1.4 and bal["slot_counts"]["ratio"] <= 1.5


def test_a_balanced_design_is_found_where_one_exists():
    # 6 systems, 4 per screen: 15 screens give every pair exactly 6 screens (a BIBD).
    bal = screen_balance(balanced_screens(names(6), 4, 15), names(6))
    assert bal["pair_counts"] == {"min": 6, "max": 6, "ratio": 1.0}
    assert bal["shown"]["ratio"] == 1.0
    bal = screen_balance(balanced_screens(names(6), 4, 60), names(6))
    assert bal["pair_counts"]["ratio"] == 1.0 and bal["slot_counts"]["ratio"] == 1.0


def test_every_system_on_every_screen_only_rotates_slots():
    screens = balanced_screens(names(6), 6, 36)
    assert all(sorted(s) == names(6) for s in screens)
    assert screen_balance(screens)["slot_counts"] == {"min": 6, "max": 6, "ratio": 1.0}


def test_balance_of_hand_made_screens():
    bal = screen_balance([("A", "B"), ("A", "C"), ("B", "A")], ["A", "B", "C"])
    assert bal["pair_counts"] == {"min": 0, "max": 2, "ratio": None}  # B and C never met
    assert bal["shown"] == {"min": 1, "max": 3, "ratio": 3.0}
    assert bal["slot_counts"]["max"] == 2  # A in slot 1 twice


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        balanced_screens(["A", "A"], 1, 3)
