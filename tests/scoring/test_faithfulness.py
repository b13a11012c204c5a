"""Deletion/insertion AUC and the model-randomisation check (fl_saliency/scoring/faithfulness.py)."""

import json

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from scipy.stats import spearmanr

from explain_models import Linear, one_thread  # noqa: F401 (autouse fixture)
from fl_saliency.scoring.atari_head.sample import make_sample_trial
from fl_saliency.cli import main
from fl_saliency.methods import METHODS
from fl_saliency.scoring.faithfulness import (cascading_randomisation, curve_auc, deletion_insertion_curves, mean_spearman,
                                      parameter_layers)
from fl_saliency.agents.networks import ActorCritic
from helpers import write_experiment


def numpy_curves(w, obs, actions, maps, step, sigma=5.0):
    """The curves by a plain loop: pixels in stable descending order, changed step by step in all frames."""
    x = obs.astype(np.float64) / 255
    blurred = gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode="reflect", truncate=4.0)
    deletion, insertion = [], []
    for n in range(len(x)):
        order = np.argsort(-maps[n].reshape(-1), kind="stable")
        d_curve, i_curve = [], []
        for k in range(int(np.ceil(84 * 84 / step)) + 1):
            rows, cols = np.unravel_index(order[: min(k * step, 84 * 84)], (84, 84))
            deleted, inserted = x[n].copy(), blurred[n].copy()
            deleted[:, rows, cols] = blurred[n][:, rows, cols]
            inserted[:, rows, cols] = x[n][:, rows, cols]
            for curve, image in ((d_curve, deleted), (i_curve, inserted)):
                logits = w @ image.reshape(-1)
                p = np.exp(logits - logits.max())
                curve.append(p[actions[n]] / p.sum())
        deletion.append(d_curve)
        insertion.append(i_curve)
    return np.array(deletion), np.array(insertion)


def test_curves_match_a_numpy_loop():
    model = Linear(n_actions=3, seed=1)
    model.w *= 20  # probabilities that move as pixels change
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (2, 4, 84, 84), dtype=np.uint8)
    maps = rng.random((2, 84, 84)).astype(np.float32)
    maps[0, :10] = 0.5  # ties: broken by pixel index
    actions = np.array([0, 2])
    deletion, insertion = deletion_insertion_curves(model, torch.from_numpy(obs), torch.from_numpy(actions),
                                                    torch.from_numpy(maps), step=700)
    want_d, want_i = numpy_curves(model.w.double().numpy(), obs, actions, maps, step=700)
    assert deletion.shape == (2, 12)  # ceil(7056 / 700) = 11 steps
    np.testing.assert_allclose(deletion, want_d, atol=1e-5)
    np.testing.assert_allclose(insertion, want_i, atol=1e-5)
    assert np.ptp(want_d) > 0.05
    fractions = np.minimum(np.arange(12) * 700, 7056) / 7056
    np.testing.assert_allclose(curve_auc(deletion, step=700), [np.trapezoid(c, fractions) for c in want_d], atol=1e-5)


class OnePixel(torch.nn.Module):
    """p(action 0) = sigmoid(20 (x[40, 40] - 0.5)), the pixel's mean over the frames: nothing else matters."""

    def forward_scaled(self, x):
        logit = 20 * (x[:, :, 40, 40].mean(1) - 0.5)
        return torch.stack([logit, torch.zeros_like(logit)], 1), logit, x[:, 0]


def test_a_map_ranking_the_one_pixel_first_deletes_fast_and_inserts_fast():
    obs = torch.zeros(1, 4, 84, 84, dtype=torch.uint8)
    obs[:, :, 40, 40] = 255  # p = sigmoid(10) ~ 1; blurred (sigma 5) the pixel is ~0.006: p ~ 0
    first, last = torch.zeros(1, 84, 84), torch.ones(1, 84, 84)
    first[0, 40, 40], last[0, 40, 40] = 1, 0
    action = torch.tensor([0])
    one_step = 1 / 84 / 2  # the area of the one step where the curve falls or rises: 84 pixels a step, 84 steps
    for ranking, (want_deletion, want_insertion) in ((first, (one_step, 1 - one_step)),
                                                     (last, (1 - one_step, one_step))):
        deletion, insertion = deletion_insertion_curves(OnePixel(), obs, action, ranking)
        assert deletion.shape == (1, 85)
        np.testing.assert_allclose(curve_auc(deletion), [want_deletion], atol=1e-3)
        np.testing.assert_allclose(curve_auc(insertion), [want_insertion], atol=1e-3)


def mean_over_frames(model, obs, actions):
    """A 'method' that ignores the model: the input itself."""
    return obs.float().mean(1)


def test_randomisation_flags_a_method_that_ignores_the_weights_and_not_gradient():
    torch.manual_seed(1)
    model = ActorCritic("cnn", 4).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    obs = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84), dtype=np.uint8))
    actions = model(obs)[0].argmax(1)
    result = cascading_randomisation(model, obs, actions, {"input": mean_over_frames, "gradient": METHODS["gradient"]})
    layers = ["vf", "pi", "extractor.fc1", "extractor.features.c3", "extractor.features.c2", "extractor.features.c1"]
    assert parameter_layers(model, obs) == layers and result["gradient"]["layers"] == layers
    assert result["input"]["spearman"] == pytest.approx([1.0] * 6) and result["input"]["flagged"]
    assert result["gradient"]["spearman"][-1] < 0.7 and not result["gradient"]["flagged"]
    assert result["gradient"]["spearman"][0] == pytest.approx(1.0)  # the value head: logits' gradient unchanged
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the model is left as it was


def test_mean_spearman_is_scipys_per_map_and_leaves_constant_maps_out():
    rng = np.random.default_rng(3)
    a, b = rng.random((3, 8, 8)), rng.random((3, 8, 8))
    b[1] = a[1] ** 2 + 0.1 * b[1]
    want = np.mean([spearmanr(a[i].ravel(), b[i].ravel()).statistic for i in range(3)])
    assert mean_spearman(a, b) == pytest.approx(want)
    b[2] = 1.0
    assert mean_spearman(a, b) == pytest.approx(np.mean([spearmanr(a[i].ravel(), b[i].ravel()).statistic
                                                         for i in range(2)]))
    assert np.isnan(mean_spearman(a[2:], b[2:]))


def test_command_writes_faithfulness_json(tmp_path, capsys):
    make_sample_trial("Breakout", 25, tmp_path / "ah", layout="release2", seed=1, trial_number=903)
    folder, _ = write_experiment(tmp_path / "exp", network="cnn")
    args = ["faithfulness", "--experiment-dir", str(folder), "--atari-head-dir", str(tmp_path / "ah"),
            "--output-dir", str(tmp_path / "out"), "--method", "gradient,attention", "--max-maps", "2",
            "--step", "1764", "--device", "cpu"]
    assert main(args) == 0
    summary = json.loads((tmp_path / "out" / "faithfulness.json").read_text())
    assert summary["maps"] == 2 and list(summary["methods"]) == ["gradient", "attention"]
    gradient = summary["methods"]["gradient"]
    assert gradient["deletion_auc"]["count"] == 2 and 0 <= gradient["insertion_auc"]["mean"] <= 1
    assert len(gradient["randomisation"]["spearman"]) == 6
    assert summary["methods"]["attention"]["randomisation"]["spearman"][-1] is None  # cnn's map is all zero
    out = capsys.readouterr().out
    assert out.count("deletion AUC") == 2
    assert main(args) == 2  # a finished run is not overwritten without --force
    assert "--force" in capsys.readouterr().err


def test_an_unknown_method_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["faithfulness", "--experiment-dir", str(tmp_path), "--atari-head-dir", str(tmp_path),
              "--output-dir", str(tmp_path / "out"), "--method", "gradient,nope"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "unknown saliency method 'nope'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_max_maps_beyond_the_dataset_is_said_and_the_run_goes_on(tmp_path, capsys):
    make_sample_trial("Breakout", 25, tmp_path / "ah", layout="release2", seed=1, trial_number=903)
    folder, _ = write_experiment(tmp_path / "exp", network="cnn")
    assert main(["faithfulness", "--experiment-dir", str(folder), "--atari-head-dir", str(tmp_path / "ah"),
                 "--output-dir", str(tmp_path / "out"), "--method", "attention", "--max-maps", "100000",
                 "--step", "7056", "--device", "cpu"]) == 0
    # 25 frames: observations at PNGs 1, 5, 9, ..., 21 (ceil((25 - 1) / 4) = 6).
    assert capsys.readouterr().err.splitlines() == [
        f"warning: {tmp_path / 'ah'} holds 6 Breakout observations: explaining 6, not --max-maps 100000"]
    assert json.loads((tmp_path / "out" / "faithfulness.json").read_text())["maps"] == 6
