"""Ranking statistics behind the leaderboard, exactly as docs/metrics.md defines them.
Pure numpy/scipy (no Django), so it can be tested and benchmarked on its own.

Input: one criterion's rankings as `Annotation` objects (`ranking` = tie groups of system names,
best first). Everything else is a function of those:

- `leaderboard(annotations, systems=None, *, unit="annotation", rounds=1000, seed=0,
  alpha=0.05, attention=None, exclude=(), bt_prior=BT_PRIOR) -> dict`: every figure, with
  cluster-bootstrap (over items) percentile intervals, as a JSON-ready dict of plain
  floats/ints/lists/None. Keys: `unit`, `seed`, `bootstrap_rounds`, `alpha`, `bt_prior`,
  `n_annotations`, `n_items`, `n_annotators`, `n_units`, `chance_win1`, `systems` (best Win@1
  first; the entries' keys are listed in `leaderboard`), `pairwise`, `agreement`,
  `position_bias`, `annotators`, `robustness`, `robustness_method`, `tie_model`,
  `tie_parameters`, `tie_parameters_se_log`, `tie_share_equal`.
- Single figures, for callers that need one and for hand-checked tests: `win1`, `strict_win1`,
  `win_at_k`, `mean_rank`, `pairwise_win_rates`, `pairwise_wins`, `bradley_terry`, `to_elo`,
  `plackett_luce`, `kendalls_w`, `krippendorff_alpha_ordinal`, `ranking_alpha`,
  `top1_agreement`, `position_bias`, `annotator_quality`, `combine_per_item`, `holm`,
  `sign_test`, `significance_groups`, `bootstrap_counts`, `bootstrap_statistics`.

Conventions. Positions are 1-based; a tie group over positions a..b gives each member the
average position (a + b) / 2. Units: "annotation" counts each ranking once; "item" first
combines an item's rankings by mean position (ties kept, `combine_per_item`), then counts each
item once. Agreement, position bias and annotator quality are always per annotation.
Undefined figures are NaN in the array-returning functions and None in dicts (a system never
shown, one system, all ties, fewer than two annotators...). Malformed input (a system twice in
one ranking, an empty ranking or tie group, a display order that is not a permutation of the
ranked systems, a name outside `systems`) raises ValueError: that is a bug upstream, not data.

Modules, each importable on its own (the names above are all re-exported here):
`tables` (Annotation, encoding, units, combine_per_item), `features` (per-item sufficient
statistics), `fits` (Bradley-Terry, Plackett-Luce, to_elo), `bootstrap` (resample counts, every
figure per round, intervals), `figures` (single point figures), `agreement` (Kendall's W,
Krippendorff's alpha, top-1 agreement, annotator quality), `bias` (position bias),
`significance` (sign tests, Holm, letter groups) and `leaderboard` (the whole dict; here
`metrics.leaderboard` is that function, which shadows its module of the same name).

Planning, watching and stopping a study (design.md), same rules (pure, seeded, JSON-ready):
`simulate` (the generative model: `simulate_study`, `worths_for_win1`, `expected_win1`,
`system_names`), `screens` (`balanced_screens`, `screen_balance`), `adaptive` (adaptive
allocation: `AdaptiveState`, `choose_screen`, `record`, `screen_probabilities`, `ipw_win1`,
`simulate_adaptive`), `design` (`design_grid`,
`simulate_verdicts`, `fast_verdict`), `sequential` (`confidence_sequence`, `rejects`,
`forecast`, `pair_differences`), `robustness` (the function `robustness`, which
shadows its module as `leaderboard` does) and `ties` (`plackett_luce_ties`: Plackett-Luce with
a tie parameter per tie order, Turner et al. 2020; its generator is `simulate_pl_ties`).
"""

from .adaptive import (
    AdaptiveState,
    choose_screen,
    ipw_win1,
    record,
    screen_probabilities,
    simulate_adaptive,
)
from .agreement import (
    annotator_quality,
    kendalls_w,
    krippendorff_alpha_ordinal,
    ranking_alpha,
    top1_agreement,
)
from .bias import position_bias
from .bootstrap import bootstrap_counts, bootstrap_statistics
from .features import PL_MAX_CHOICE_SETS
from .figures import (
    mean_rank,
    pairwise_win_rates,
    pairwise_wins,
    plackett_luce,
    strict_win1,
    win1,
    win_at_k,
)
from .fits import BT_PRIOR, ELO_MEAN, ELO_SCALE, bradley_terry, to_elo
from .leaderboard import leaderboard
from .design import design_grid, fast_verdict, simulate_verdicts
from .robustness import robustness
from .screens import balanced_screens, screen_balance
from .sequential import confidence_sequence, forecast, pair_differences, rejects
from .simulate import (
    expected_win1,
    simulate_pl_ties,
    simulate_study,
    system_names,
    worths_for_win1,
)
from .significance import holm, sign_test, significance_groups
from .tables import UNITS, Annotation, combine_per_item
from .ties import plackett_luce_ties

__all__ = [
    "AdaptiveState",
    "BT_PRIOR",
    "ELO_MEAN",
    "ELO_SCALE",
    "PL_MAX_CHOICE_SETS",
    "UNITS",
    "Annotation",
    "annotator_quality",
    "balanced_screens",
    "bootstrap_counts",
    "bootstrap_statistics",
    "bradley_terry",
    "choose_screen",
    "combine_per_item",
    "confidence_sequence",
    "design_grid",
    "expected_win1",
    "fast_verdict",
    "forecast",
    "holm",
    "ipw_win1",
    "kendalls_w",
    "krippendorff_alpha_ordinal",
    "leaderboard",
    "mean_rank",
    "pair_differences",
    "pairwise_win_rates",
    "pairwise_wins",
    "plackett_luce",
    "plackett_luce_ties",
    "position_bias",
    "ranking_alpha",
    "record",
    "rejects",
    "robustness",
    "screen_balance",
    "screen_probabilities",
    "sign_test",
    "significance_groups",
    "simulate_adaptive",
    "simulate_pl_ties",
    "simulate_study",
    "simulate_verdicts",
    "strict_win1",
    "system_names",
    "to_elo",
    "top1_agreement",
    "win1",
    "win_at_k",
    "worths_for_win1",
]
