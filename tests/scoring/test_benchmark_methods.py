"""``--method`` end to end through the Atari-HEAD benchmark on a generated trial (atari_head/benchmark.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from explain_models import one_thread  # noqa: F401 (autouse fixture)
from fl_saliency.scoring.benchmark import SaliencySettings, run_benchmark
from fl_saliency.scoring.atari_head.dataset import AtariHeadDataset
from fl_saliency.scoring.atari_head.env import agent_observations
from fl_saliency.scoring.atari_head.gaze import fixation_maps, trial_gaze
from fl_saliency.scoring.atari_head.sample import make_sample_trial
from fl_saliency.agents.checkpoint import load_model, load_restricted
from fl_saliency.cli import main
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.methods import METHODS
from helpers import write_experiment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("atari_head")
    make_sample_trial("Breakout", 25, root, layout="release2", seed=1, trial_number=903)  # K = 6 maps
    return root


@pytest.mark.slow
def test_two_methods_share_a_run_and_leave_attention_as_it_was(dataset, tmp_path):
    folder, _ = write_experiment(tmp_path / "exp", network="cnn")
    run_benchmark(SaliencySettings(folder, dataset, tmp_path / "alone", device="cpu", processed_obs=True), echo=print)
    lines = []
    summary = run_benchmark(SaliencySettings(folder, dataset, tmp_path / "out", device="cpu", processed_obs=True,
                                             method=["attention", "gradient", "perturbation"]), echo=lines.append)
    out = tmp_path / "out"
    # attention: the same saliency.pkl as a run without --method (cnn's all-zero map: every metric undefined)
    alone, together = (load_restricted(p / "saliency.pkl", "saliency file") for p in (tmp_path / "alone", out))
    for metric in ("nss", "kldiv", "sauc"):
        np.testing.assert_array_equal(together[0]["metrics"][metric], alone[0]["metrics"][metric])
        assert np.isnan(together[0]["metrics"][metric]).all()
    assert list(summary["methods"]) == ["attention", "gradient", "perturbation"] and summary["method"] == "attention"
    assert summary["overall"] == summary["methods"]["attention"]["overall"]
    assert json.loads((out / "saliency.json").read_text())["methods"]["gradient"]["overall"]["nss"]["count"] >= 4
    assert [line.split(", ")[1] for line in lines] == ["attention", "gradient", "perturbation"]
    csv_methods = [row.split(",")[2] for row in (out / "saliency.csv").read_text().splitlines()[1:]]
    rows = 2 * 8  # the trial and overall, 8 metrics each
    assert csv_methods == ["attention"] * rows + ["gradient"] * rows + ["perturbation"] * rows

    # gradient's NSS by hand: each observation's map divided by the trial's maximum, z-scored, at the fixations
    model, _ = load_model(folder, torch.device("cpu"))
    ds = AtariHeadDataset(dataset)
    trial = ds.trials("Breakout")[0]
    obs = torch.from_numpy(np.stack(list(agent_observations(lambda: ds.frames(trial)))))
    maps = METHODS["gradient"](model.eval(), obs, model(obs)[0].argmax(1)).double().numpy()
    maps /= maps.max()
    gaze = ds.labels(trial).gaze
    nss = load_restricted(out / "saliency.gradient.pkl", "saliency file")[0]["metrics"]["nss"]
    for k in range(len(maps)):
        f = fixation_maps(trial_gaze(gaze, k, "original"))[1]
        if f.sum():
            z = (maps[k] - maps[k].mean()) / maps[k].std()
            assert nss[k] == pytest.approx((z * f).sum() / f.sum(), rel=1e-5)
        else:
            assert np.isnan(nss[k])
    assert (out / "saliency.perturbation.pkl").exists()
    with pytest.raises(FlSaliencyError, match="already holds saliency.gradient.pkl"):
        run_benchmark(SaliencySettings(folder, dataset, out, device="cpu", method=["gradient"]), echo=print)


@pytest.mark.subprocess
def test_method_flag_of_the_script(dataset, tmp_path, capsys):
    folder, _ = write_experiment(tmp_path / "exp", network="cnn_sparse_fls")
    base = [sys.executable, str(ROOT / "benchmark_atari_head.py"), "--experiment-dir", str(folder),
            "--atari-head-dir", str(dataset), "--output-dir", str(tmp_path / "o")]
    single_thread_env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(base + ["--method", "gradcam,smoothgrad"], capture_output=True, text=True, cwd=ROOT,
                            env=single_thread_env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "o").glob("*.pkl")) == ["saliency.gradcam.pkl", "saliency.smoothgrad.pkl"]
    with pytest.raises(SystemExit) as exit:  # argparse's one-line refusal of the flag
        main(base[2:] + ["--method", "attention,lime"], command="saliency")
    stderr = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 2 and "unknown saliency method 'lime'; choose from: attention," in stderr[-1]
    with pytest.raises(FlSaliencyError, match="unknown saliency method 'lime'"):
        SaliencySettings(folder, dataset, tmp_path / "p", method=["lime"])


def test_video_shows_the_map_of_video_method(dataset, tmp_path):
    from fl_saliency.evaluation.perception_video import read_frames

    folder, _ = write_experiment(tmp_path / "exp", network="cnn")  # cnn's attention is all zero: no heat
    videos = {}
    for name, methods, shown in [("default", ["attention", "gradient"], None), ("chosen", ["attention", "gradient"], "gradient"),
                                 ("alone", ["gradient"], None)]:
        run_benchmark(SaliencySettings(folder, dataset, tmp_path / name, device="cpu", processed_obs=True, video=True,
                                       method=methods, video_method=shown), echo=print)
        videos[name] = np.stack(list(read_frames(tmp_path / name / "trial_903.mp4")))
    assert len(videos["chosen"]) == 6
    difference = {name: np.abs(videos["chosen"].astype(int) - videos[name]).mean() for name in ("alone", "default")}
    # gradient's maps as in a gradient-only run (up to H.264's lossy coding: 0.1-1 of 255), not attention's
    assert difference["alone"] < 2 and difference["default"] > 5 * difference["alone"], difference
    with pytest.raises(FlSaliencyError, match="--video-method rise is not one of --method attention,gradient"):
        SaliencySettings(folder, dataset, tmp_path / "x", method=["attention", "gradient"], video_method="rise")


PLUGIN = '''
import numpy as np


def last_frame(agent, obs, actions):
    """The newest frame's brightness as the map."""
    return obs[:, -1].float()


def peak_hit(saliency, gaze):
    """1 where the map's maximum lies on a fixated pixel."""
    return float(gaze.fixations.ravel()[int(np.argmax(saliency))] > 0)
'''


def test_a_users_method_and_metric_are_scored_from_the_command_line(dataset, tmp_path, monkeypatch, capsys):
    from fl_saliency.scoring.gaze_metrics import METRICS

    (tmp_path / "mylab_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(METHODS, "_", None)  # monkeypatch restores both registries as they were
    monkeypatch.setitem(METRICS, "_", None)
    del METHODS["_"], METRICS["_"]
    folder, _ = write_experiment(tmp_path / "exp", network="cnn")
    out = tmp_path / "out"
    code = main(["--experiment-dir", str(folder), "--atari-head-dir", str(dataset), "--output-dir", str(out),
                 "--processed-obs", "--method", "gradient,mylab_plugin:last_frame",
                 "--metric", "mylab_plugin:peak_hit"], command="saliency")
    assert code in (0, None), capsys.readouterr().err
    summary = json.loads((out / "saliency.json").read_text())
    assert list(summary["methods"]) == ["gradient", "last_frame"]
    records = load_restricted(out / "saliency.last_frame.pkl", "saliency file")[0]["metrics"]
    # oracle: the newest frame of each observation, z-scored at its fixations, and whether its brightest pixel is fixated
    ds = AtariHeadDataset(dataset)
    trial = ds.trials("Breakout")[0]
    obs = np.stack(list(agent_observations(lambda: ds.frames(trial))))
    gaze = ds.labels(trial).gaze
    hits = []
    for k, frame in enumerate(obs[:, -1].astype(np.float64)):
        f = fixation_maps(trial_gaze(gaze, k, "original"))[1]
        if not f.sum():
            continue
        z = (frame - frame.mean()) / frame.std()
        assert records["nss"][k] == pytest.approx((z * f).sum() / f.sum(), rel=1e-5)
        hits.append(float(f.ravel()[np.argmax(frame)] > 0))
    peak_hit = summary["methods"]["last_frame"]["overall"]["peak_hit"]
    assert peak_hit["count"] == len(hits) >= 4 and peak_hit["mean"] == pytest.approx(np.mean(hits))
    assert summary["methods"]["gradient"]["overall"]["peak_hit"]["count"] >= 4
    assert "peak_hit" in (out / "saliency.csv").read_text()
    # a name that is not importable, or a built-in one, is one line
    for flag, value, message in [("--method", "no_such_module:f", "cannot import 'no_such_module'"),
                                 ("--metric", "mylab_plugin:nope", "has no function 'nope'"),
                                 ("--metric", "nss", "--metric takes package.module:function")]:
        with pytest.raises(SystemExit) as exit:
            main(["--experiment-dir", str(folder), "--atari-head-dir", str(dataset), "--output-dir",
                  str(tmp_path / "x"), flag, value], command="saliency")
        assert exit.value.code == 2 and message in capsys.readouterr().err.strip().splitlines()[-1]
