"""How the report writes numbers, and the paper's tables beside ours (fl_saliency/report/tables.py)."""

import math
from pathlib import Path

from fl_saliency.report.runs import Run
from fl_saliency.report.tables import (MISSING, NOT_FINITE, fmt, mean_spread, parameter_table, saliency_table,
                                       score_table, with_interval)


def test_numbers_missing_spread_and_intervals():
    assert fmt(None) == fmt(math.nan) == MISSING and fmt(1_686_693) == "1,686,693" and fmt(0.123456) == "0.1235"
    assert mean_spread([]) == MISSING and mean_spread([4321.7]) == "4322"
    assert mean_spread([600.0, 640.0]) == "620 ± 20"  # mean and the std over seeds, by hand
    assert with_interval(None) == with_interval({"mean": None}) == MISSING
    assert with_interval({"mean": 0.5, "ci_low": 0.25, "ci_high": 0.75}) == "0.5 [0.25, 0.75]"
    assert with_interval({"mean": 0.5}) == "0.5"
    assert with_interval({"mean": math.inf}) == f"{MISSING} {NOT_FINITE}"
    assert with_interval({"mean": 0.5, "ci_low": math.nan, "ci_high": 1.0}) == f"0.5 {NOT_FINITE}"


def test_paper_tables_beside_ours():
    runs = [Run("Breakout", "cnn_sparse_fls", seed, Path(seed), mean_score=score, saliency=saliency)
            for seed, score, saliency in (("01", 600.0, {"nss": 1.0, "kldiv": 2.0, "sauc": 0.5}),
                                          ("02", None, {}))]
    groups = {("Breakout", "cnn_sparse_fls"): runs}
    assert score_table(groups)[-1] == "| Breakout | cnn_sparse_fls | 2 | 1 | 600 | 624 |"
    assert saliency_table(groups)[-1] == "| Breakout | cnn_sparse_fls | 1 | 1 | 2 | 0.5 | 0.51 |"
    assert parameter_table(["cnn", "nonsense"])[-2:] == ["| cnn | 1,686,693 | 1,686,693 |",
                                                         f"| nonsense | {MISSING} | {MISSING} |"]
