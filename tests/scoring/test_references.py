"""fl_saliency.scoring.references and the references loop of the benchmark: hand-made rows and
densities, leave-one-trial-out by hand, the command line, the outputs, and the expected order
(uniform < centre bias < gaze neighbour) on generated Breakout trials whose gaze follows the ball."""

from __future__ import annotations

import csv
import io
import json

import cv2
import numpy as np
import pytest

from fl_saliency import cli
from fl_saliency.scoring.benchmark import (
    METRICS,
    SaliencySettings,
    game_gaze_counts,
    leave_one_out_center_bias,
    run_benchmark,
    score_references,
)
from fl_saliency.scoring.atari_head.dataset import AtariHeadDataset
from fl_saliency.scoring.atari_head.gaze import gaze_rows
from fl_saliency.scoring.references import (
    REFERENCES,
    UNIFORM_WEIGHT,
    center_bias,
    gaze_density,
    gaze_neighbour_maps,
    neighbour_rows,
    uniform_maps,
)
from fl_saliency.scoring.atari_head.sample import make_sample_trial
from fl_saliency.agents.checkpoint import load_restricted
from helpers import write_experiment


@pytest.fixture(scope="module")
def breakout(tmp_path_factory):
    """Three generated Breakout trials (the synthetic gaze follows the ball)."""
    root = tmp_path_factory.mktemp("atari_head")
    for number, seed, n_frames in ((901, 1, 161), (902, 2, 121), (903, 3, 121)):
        make_sample_trial("Breakout", n_frames, root, layout="release2", seed=seed, trial_number=number)
    return root


def test_neighbour_rows_by_hand():
    # original alignment, map 5: rows 7, 8, 11, 12, 15, 16, 19, 20 -> span 7..20
    assert gaze_rows(5, 100) == [7, 8, 11, 12, 15, 16, 19, 20]
    assert neighbour_rows(5, 100, "original") == [1, 2, 3, 4, 5, 6, 21, 22, 23, 24, 25, 26, 27, 28]
    # displayed alignment, map 5: rows 8, 9, ..., 20, 21 -> span 8..21
    assert neighbour_rows(5, 100, "displayed") == [*range(1, 8), *range(22, 30)]
    assert neighbour_rows(5, 24, "original") == [1, 2, 3, 4, 5, 6, 21, 22, 23, 24]  # rows past the end dropped
    assert neighbour_rows(0, 100, "original") == []  # map 0 has no rows of its own
    assert neighbour_rows(1, 100, "original") == [1, 2, *range(5, 13)]  # scored rows 3, 4 (the rest before row 1)
    for k in range(1, 30):
        scored = gaze_rows(k, 100)
        assert all(not min(scored) <= n <= max(scored) for n in neighbour_rows(k, 100, "original"))


def test_gaze_density_by_hand():
    counts = np.zeros((21, 16), np.int64)
    counts[10, 8], counts[3, 2] = 3, 1
    density = gaze_density(counts, 2.0)
    blurred = cv2.GaussianBlur(counts.astype(np.float64), (0, 0), 2.0)
    np.testing.assert_allclose(density, 0.99 * blurred / blurred.sum() + 0.01 / counts.size, rtol=1e-13)
    assert density.sum() == pytest.approx(1.0) and density.min() >= UNIFORM_WEIGHT / counts.size
    np.testing.assert_array_equal(gaze_density(np.zeros((4, 5), np.int64), 2.0), np.full((4, 5), 1 / 20))
    np.testing.assert_array_equal(center_bias([], (4, 5), 2.0), np.full((4, 5), 1 / 20))
    np.testing.assert_allclose(center_bias([counts, 2 * counts], counts.shape, 2.0), density, rtol=1e-13)


def test_uniform_maps_are_seeded_noise():
    a = list(uniform_maps(3, (6, 5), seed=7))
    b = list(uniform_maps(3, (6, 5), seed=7))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0], np.random.default_rng(7).random((6, 5)))
    assert not np.array_equal(a[0], a[1]) and all((0 <= m).all() and (m < 1).all() for m in a)


def test_gaze_neighbour_maps_use_only_the_neighbour_rows():
    n_rows = 40
    gaze_per_row = [np.array([[float(n), 100.0]]) for n in range(1, n_rows + 1)]  # row n looks at x = n
    maps = list(gaze_neighbour_maps(gaze_per_row, 9, "original", "raw", 5.0))
    for k, smap in enumerate(maps):
        counts = np.zeros((210, 160), np.int64)
        for n in neighbour_rows(k, n_rows, "original"):
            counts[100, n] += 1
        np.testing.assert_allclose(smap, gaze_density(counts, 5.0), rtol=1e-13)


def test_center_bias_leaves_the_trial_out(breakout):
    dataset = AtariHeadDataset(breakout)
    trials = dataset.trials("Breakout")
    counts = game_gaze_counts(dataset, trials, "processed")
    assert sorted(counts) == [901, 902, 903]
    for trial in trials:
        gaze = np.concatenate([g for g in dataset.labels(trial).gaze if len(g)])
        by_hand = np.zeros((84, 84), np.int64)
        for x, y in gaze:
            r, c = round(y / 210 * 84), round(x / 160 * 84)
            if 0 <= r < 84 and 0 <= c < 84:
                by_hand[r, c] += 1
        np.testing.assert_array_equal(counts[trial.number], by_hand)
    expected = gaze_density(counts[901] + counts[903], 2.0)
    np.testing.assert_allclose(leave_one_out_center_bias(counts, 902, "processed"), expected, rtol=1e-13)


@pytest.mark.slow
def test_references_give_the_expected_order_on_gaze_that_follows_the_ball(breakout, tmp_path):
    dataset = AtariHeadDataset(breakout)
    settings = SaliencySettings(tmp_path, breakout, tmp_path, references=list(REFERENCES))
    counts = game_gaze_counts(dataset, dataset.trials("Breakout"), "raw")
    scores = {name: {m: [] for m in METRICS} for name in REFERENCES}
    for trial in dataset.trials("Breakout"):
        result = score_references(dataset, trial, settings, leave_one_out_center_bias(counts, trial.number, "raw"))
        for name in REFERENCES:
            for m in METRICS:
                scores[name][m].append(result[name][m])
    mean = {name: {m: np.nanmean(np.concatenate(v)) for m, v in s.items()} for name, s in scores.items()}
    for metric in ("nss", "auc_judd", "cc", "sim", "info_gain"):
        assert mean["uniform"][metric] < mean["center-bias"][metric] < mean["gaze-neighbour"][metric], metric
    # sAUC draws its negatives from the trial's other fixations: it discounts a centre bias by design
    assert max(mean["uniform"]["sauc"], mean["center-bias"]["sauc"]) < mean["gaze-neighbour"]["sauc"]
    for metric in ("kldiv", "mit_kldiv"):  # lower is better
        assert mean["uniform"][metric] > mean["center-bias"][metric] > mean["gaze-neighbour"][metric], metric
    # chance: uniform noise scores about 0 NSS and CC and 0.5 AUC; the centre bias gains 0 bits over itself
    assert abs(mean["uniform"]["nss"]) < 0.1 and abs(mean["uniform"]["cc"]) < 0.05
    assert abs(mean["uniform"]["auc_judd"] - 0.5) < 0.05
    assert np.nanmax(np.abs(np.concatenate(scores["center-bias"]["info_gain"]))) == 0.0
    assert mean["gaze-neighbour"]["auc_judd"] > 0.8


@pytest.mark.slow
def test_references_flag_and_outputs(breakout, tmp_path):
    parser = cli.build_command_parser("saliency", "saliency")
    base = ["--experiment-dir", str(tmp_path), "--atari-head-dir", str(breakout), "--output-dir", str(tmp_path)]
    settings = cli.settings_from_args(SaliencySettings, parser.parse_args(base + ["--references", "uniform,gaze-neighbour"]))
    assert settings.references == ["uniform", "gaze-neighbour"]
    assert cli.settings_from_args(SaliencySettings, parser.parse_args(base)).references is None
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--references", "uniform,chance"])

    folder, _ = write_experiment(tmp_path / "exp")
    lines = []
    summary = run_benchmark(SaliencySettings(folder, breakout, tmp_path / "out", trials=[902, 903], device="cpu",
                                             references=["uniform", "center-bias"]), echo=lines.append)
    assert list(summary["references"]) == ["uniform", "center-bias"]
    assert any(line.startswith("reference center-bias: NSS") for line in lines)
    # saliency.pkl keeps the original's format: NSS, KL and sAUC of the attention, nothing else
    records = load_restricted(tmp_path / "out" / "saliency.pkl", "saliency file")
    assert [set(r) for r in records] == [{"trial_number", "metrics"}] * 2
    assert all(set(r["metrics"]) == {"nss", "kldiv", "sauc"} for r in records)
    saved = json.loads((tmp_path / "out" / "saliency.json").read_text())
    for result in (saved, *saved["references"].values()):
        assert list(result["overall"]) == list(METRICS) and sorted(result["trials"]) == ["902", "903"]
        for stats in result["overall"].values():
            assert stats["ci_low"] <= stats["mean"] <= stats["ci_high"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "saliency.csv").read_text())))
    assert len(rows) == 3 * 3 * len(METRICS)  # attention + 2 references, 2 trials + overall
    cb = next(r for r in rows if r["method"] == "center-bias" and r["trial"] == "overall" and r["metric"] == "nss")
    assert float(cb["mean"]) == pytest.approx(saved["references"]["center-bias"]["overall"]["nss"]["mean"])
    assert float(cb["ci_high"]) == pytest.approx(saved["references"]["center-bias"]["overall"]["nss"]["ci_high"])
