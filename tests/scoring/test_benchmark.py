import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import joblib
import numpy as np
import pytest
import scipy.stats
import skimage.transform
from sklearn.metrics import roc_auc_score

from fl_saliency.scoring.benchmark import METRICS, SaliencySettings, run_benchmark, score_maps
from fl_saliency.scoring.gaze_metrics import (auc_judd, cc, information_gain, mit_kl_divergence, nss, other_maps_for_sauc,
                                            shuffled_auc_exact, sim)
from fl_saliency.scoring.atari_head.sample import make_sample_trial
from fl_saliency.agents.checkpoint import load_restricted
from fl_saliency.common.errors import FlSaliencyError
from helpers import write_experiment
from numpy_reference import random_baselines_params, reference_forward
from sauc_reference import ref_auc_shuffled_many, sklearn_weighted_auc

ROOT = Path(__file__).resolve().parents[2]
N_FRAMES = 61  # K = 15 maps


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("atari_head")
    make_sample_trial("Breakout", N_FRAMES, root, layout="release2", seed=1, trial_number=901)
    make_sample_trial("Breakout", 45, root, layout="release2", seed=2, trial_number=902)
    return root


def read_trial_by_hand(root, number):
    """PNG frames and gaze rows of one release-2 trial, read with tarfile/cv2 and plain string splitting."""
    stem = next(p.name[: -len(".tar.bz2")] for p in root.glob(f"{number}_*.tar.bz2"))
    with tarfile.open(root / f"{stem}.tar.bz2") as tar:
        members = {int(m.name.rsplit("_", 1)[1][:-4]): m for m in tar.getmembers() if m.name.endswith(".png")}
        frames = [cv2.cvtColor(cv2.imdecode(np.frombuffer(tar.extractfile(members[n]).read(), np.uint8),
                                            cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for n in sorted(members)]
    gaze = []
    for line in (root / f"{stem}.txt").read_text().splitlines()[1:]:
        values = line.split(",")[6:]
        gaze.append([] if values == ["null"] else [(float(x), float(y)) for x, y in zip(values[::2], values[1::2])])
    return frames, gaze


def reference_metrics(frames, gaze, network, params):
    """The whole protocol, independently: observations by formula, the NumPy network, NumPy rendering,
    scikit-image's resize (the original's), OpenCV blurring, scipy's entropy and scikit-learn's AUC."""
    warp = lambda rgb: cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (84, 84), interpolation=cv2.INTER_AREA)
    k_maps = math.ceil((len(frames) - 1) / 4)
    singles = [warp(frames[0])] + [warp(np.maximum(frames[4 * k - 1], frames[4 * k])) for k in range(1, k_maps)]
    stacks = np.stack([np.stack([singles[j] if j >= 0 else np.zeros((84, 84), np.uint8) for j in range(k - 3, k + 1)], -1)
                       for k in range(k_maps)])
    attention = reference_forward(network, params, stacks)["attention"]
    rendered = np.zeros((k_maps, 84, 84))
    for k in range(k_maps):
        for i in range(7):
            for j in range(7):
                rendered[k, 8 * i : 8 * i + 36, 8 * j : 8 * j + 36] += attention[k, i, j]
    rendered = np.maximum(rendered, 0) / rendered.max()
    # Rounded to 12 decimals: scikit-image's rounding breaks the ties of equal saliency at the last bit.
    smaps = [np.round(skimage.transform.resize(r.astype(np.float32).astype(np.float64), (210, 160)), 12) for r in rendered]
    fmaps = []
    for k in range(k_maps):
        f = np.zeros((210, 160), np.int64)
        for n in [4 * k - 13, 4 * k - 12, 4 * k - 9, 4 * k - 8, 4 * k - 5, 4 * k - 4, 4 * k - 1, 4 * k]:
            if 1 <= n <= len(gaze):
                for x, y in gaze[n - 1]:
                    r, c = round(y), round(x)
                    if 0 <= r < 210 and 0 <= c < 160:
                        f[r, c] += 1
        fmaps.append(f)
    rng = np.random.RandomState(42)
    out = {m: np.full(k_maps, np.nan) for m in ("nss", "kldiv", "sauc")}
    for k, (s, f) in enumerate(zip(smaps, fmaps)):
        if f.sum() == 0:
            continue
        z = (s - s.mean()) / s.std()
        out["nss"][k] = (z * f).sum() / f.sum()
        p = cv2.GaussianBlur(f.astype(np.float64), (0, 0), 5)
        out["kldiv"][k] = scipy.stats.entropy(p.ravel(), s.ravel())
        idx = rng.randint(k_maps - 1, size=10)
        idx[idx >= k] += 1
        omap = np.sum([fmaps[j] for j in idx], axis=0)
        sn = (s - s.min()) / (s.max() - s.min())
        labels = np.r_[np.ones(sn.size), np.zeros(sn.size)]
        out["sauc"][k] = roc_auc_score(labels, np.r_[sn.ravel(), sn.ravel()], sample_weight=np.r_[f.ravel(), omap.ravel()])
    return out


def test_metrics_match_an_independent_pipeline(dataset, tmp_path):
    folder, params = write_experiment(tmp_path / "exp")
    run_benchmark(SaliencySettings(folder, dataset, tmp_path / "out", trials=[901], device="cpu"), echo=lambda s: None)
    records = load_restricted(tmp_path / "out" / "saliency.pkl", "saliency file")
    assert [r["trial_number"] for r in records] == [901]
    ours = records[0]["metrics"]
    assert set(ours) == {"nss", "kldiv", "sauc"} and all(v.dtype == np.float64 and len(v) == 15 for v in ours.values())
    frames, gaze = read_trial_by_hand(dataset, 901)
    expected = reference_metrics(frames, gaze, "cnn_sparse_fls", params)
    for metric in ("nss", "kldiv", "sauc"):
        np.testing.assert_array_equal(np.isnan(ours[metric]), np.isnan(expected[metric]), err_msg=metric)
        np.testing.assert_allclose(ours[metric], expected[metric], atol=1e-4, equal_nan=True, err_msg=metric)
    assert np.isnan(ours["nss"][0])  # the original alignment gives map 0 no fixations
    assert np.isfinite(ours["nss"][1:]).sum() >= 10


def test_outputs_summaries_and_a_failing_trial(dataset, tmp_path):
    folder, _ = write_experiment(tmp_path / "exp")
    broken = tmp_path / "ah"
    import shutil

    shutil.copytree(dataset, broken)
    tar = next(broken.glob("902_*.tar.bz2"))
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    lines = []
    summary = run_benchmark(SaliencySettings(folder, broken, tmp_path / "out", device="cpu"), echo=lines.append)
    assert list(summary["trials"]) == ["901"] and "902" in summary["failed_trials"]
    assert "902" in summary["failed_trials"]["902"] and any("skipped trial 902" in line for line in lines)
    saved = json.loads((tmp_path / "out" / "saliency.json").read_text())
    records = load_restricted(tmp_path / "out" / "saliency.pkl", "saliency file")
    nss = records[0]["metrics"]["nss"]
    assert saved["overall"]["nss"]["count"] == int(np.isfinite(nss).sum())
    assert saved["overall"]["nss"]["mean"] == pytest.approx(np.nanmean(nss))
    assert saved["overall"]["nss"]["std"] == pytest.approx(np.nanstd(nss))
    csv_lines = (tmp_path / "out" / "saliency.csv").read_text().splitlines()
    assert csv_lines[0] == "trial,resolution,method,metric,mean,std,count,ci_low,ci_high"
    assert len(csv_lines) == 1 + 2 * 8  # trial 901 and overall, 8 metrics each
    assert all(line.split(",")[2] == "attention" for line in csv_lines[1:])
    with pytest.raises(FlSaliencyError, match="already holds saliency.pkl"):
        run_benchmark(SaliencySettings(folder, broken, tmp_path / "out", device="cpu"), echo=lambda s: None)


def test_all_zero_attention_is_undefined_never_zero(dataset, tmp_path):
    folder, _ = write_experiment(tmp_path / "exp", network="cnn")
    summary = run_benchmark(SaliencySettings(folder, dataset, tmp_path / "out", device="cpu"), echo=lambda s: None)
    for metric in ("nss", "kldiv", "sauc"):
        assert summary["overall"][metric] == {"mean": None, "std": None, "count": 0, "ci_low": None, "ci_high": None}
    records = load_restricted(tmp_path / "out" / "saliency.pkl", "saliency file")
    assert all(np.isnan(r["metrics"][m]).all() for r in records for m in ("nss", "kldiv", "sauc"))
    assert "NaN" not in (tmp_path / "out" / "saliency.json").read_text()


def test_processed_resolution_alignment_and_sampled_sauc_change_the_scores(dataset, tmp_path):
    folder, _ = write_experiment(tmp_path / "exp")
    base = dict(trials=[901], device="cpu")
    raw = run_benchmark(SaliencySettings(folder, dataset, tmp_path / "a", **base), echo=lambda s: None)
    processed = run_benchmark(SaliencySettings(folder, dataset, tmp_path / "b", processed_obs=True, **base), echo=lambda s: None)
    displayed = run_benchmark(SaliencySettings(folder, dataset, tmp_path / "c", gaze_alignment="displayed", **base),
                              echo=lambda s: None)
    sampled = run_benchmark(SaliencySettings(folder, dataset, tmp_path / "d", sauc_mode="sampled", **base), echo=lambda s: None)
    assert processed["resolution"] == "processed"
    assert processed["overall"]["nss"]["mean"] != raw["overall"]["nss"]["mean"]
    # Displayed alignment: map 0 now has PNG 1's gaze, so one more map is scored.
    assert displayed["overall"]["nss"]["count"] == raw["overall"]["nss"]["count"] + 1
    assert sampled["overall"]["nss"] == raw["overall"]["nss"]
    assert sampled["overall"]["sauc"]["mean"] == pytest.approx(raw["overall"]["sauc"]["mean"], abs=0.05)


@pytest.mark.subprocess
def test_script_with_the_original_flags_and_a_video(dataset, tmp_path):
    folder, _ = write_experiment(tmp_path / "exp")
    result = subprocess.run([sys.executable, str(ROOT / "benchmark_atari_head.py"), "--experiment-dir", str(folder),
                             "--atari-head-dir", str(dataset), "--output-dir", str(tmp_path / "o"), "--eval-seed", "1000"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "2 trials (raw): NSS" in result.stdout
    assert "%|" not in result.stderr  # no progress without --progress
    result = subprocess.run([sys.executable, "-m", "fl_saliency.cli", "saliency", "--experiment-dir", str(folder),
                             "--atari-head-dir", str(dataset), "--output-dir", str(tmp_path / "v"), "--trials", "902",
                             "--video", "--progress"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    # stderr is no terminal here: the progress comes as lines (at the start, every 30 s, at the end), never redrawn.
    assert "\r" not in result.stderr
    bar = [line for line in result.stderr.splitlines() if "%|" in line]
    assert len(bar) == 2 and bar[0].startswith("  0%|") and " 0/1 [" in bar[0] and "trial/s]" in bar[0]
    assert bar[1].startswith("100%|") and " 1/1 [" in bar[1]
    from fl_saliency.evaluation.perception_video import read_frames

    frames = list(read_frames(tmp_path / "v" / "trial_902.mp4"))
    assert len(frames) == math.ceil((45 - 1) / 4) and frames[0].shape == (210, 160, 3)


@pytest.mark.subprocess
def test_game_missing_from_the_dataset_is_one_line(dataset, tmp_path):
    folder, _ = write_experiment(tmp_path / "exp")
    (folder / "config.json").write_text(json.dumps({"network": "cnn_sparse_fls", "env_name": "PongNoFrameskip-v4"}))
    joblib.dump(random_baselines_params("cnn_sparse_fls", 6, np.random.default_rng(0)), folder / "model.pkl")
    result = subprocess.run([sys.executable, str(ROOT / "benchmark_atari_head.py"), "--experiment-dir", str(folder),
                             "--atari-head-dir", str(dataset), "--output-dir", str(tmp_path / "o")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no Atari-HEAD trials for game Pong" in result.stderr


# ---------------------------------------------------------------------------------------------
# score_maps: the metrics of a trial's maps, as the command runs them, on made-up maps and gaze


def made_up_trial(rng, k_maps, n=12):
    """Smooth 84x84 saliency maps, gaze samples per map (some off screen) and their fixation
    maps counted here on the processed grid (Python's round, samples off the grid dropped)."""
    smaps = np.stack([cv2.GaussianBlur(rng.random((84, 84)), (0, 0), 2.0) + 0.05 for _ in range(k_maps)])
    gaze, fmaps = [], np.zeros((k_maps, 84, 84), np.int64)
    for k in range(k_maps):
        xy = np.c_[rng.uniform(-5, 165, n), rng.uniform(-5, 215, n)].round(2)
        gaze.append(xy)
        for x, y in xy:
            r, c = round(y / 210 * 84), round(x / 160 * 84)
            if 0 <= r < 84 and 0 <= c < 84:
                fmaps[k, r, c] += 1
    return smaps, gaze, fmaps


def test_score_maps_against_the_references():
    rng = np.random.default_rng(9)
    k_maps, sigma = 5, 2.0
    smaps, gaze, fmaps = made_up_trial(rng, k_maps)
    smaps[1] = np.floor(smaps[1] / smaps[1].max() * 8) / 8 + 0.1  # ties
    gaze[0], fmaps[0] = np.zeros((0, 2)), 0  # no fixations: all undefined, draws nothing
    smaps[3] = 0.7  # constant: NSS and sAUC undefined, KL defined

    exact = score_maps(iter(smaps), gaze, "processed")
    sampled = score_maps(iter(smaps), gaze, "processed", sauc_mode="sampled")
    with_baseline = score_maps(iter(smaps), gaze, "processed", baseline=smaps[4])
    assert with_baseline["info_gain"][4] == 0.0 and np.isnan(with_baseline["info_gain"][0])
    for res in (exact, sampled):
        assert set(res) == set(METRICS)
        assert np.isnan(res["info_gain"]).all()  # no baseline given
        assert all(v.dtype == np.float64 and v.shape == (k_maps,) for v in res.values())
        assert np.isnan(res["nss"][0]) and np.isnan(res["kldiv"][0]) and np.isnan(res["sauc"][0])
        assert np.isnan(res["nss"][3]) and np.isnan(res["sauc"][3]) and np.isfinite(res["kldiv"][3])

    others = other_maps_for_sauc(fmaps.sum(axis=(1, 2)))
    for k in range(1, k_maps):
        p = cv2.GaussianBlur(fmaps[k].astype(np.float64), (0, 0), sigmaX=sigma)
        assert exact["kldiv"][k] == pytest.approx(scipy.stats.entropy(p.ravel(), smaps[k].ravel()), rel=1e-12)
        assert exact["auc_judd"][k] == auc_judd(smaps[k], fmaps[k])
        assert exact["cc"][k] == cc(smaps[k], fmaps[k], sigma)
        assert exact["sim"][k] == sim(smaps[k], fmaps[k], sigma)
        assert exact["mit_kldiv"][k] == mit_kl_divergence(smaps[k], fmaps[k], sigma)
        assert with_baseline["info_gain"][k] == information_gain(smaps[k], fmaps[k], smaps[4])
        if k == 3:
            continue
        assert exact["nss"][k] == nss(smaps[k], fmaps[k])
        omap = sum(fmaps[j] for j in others[k])
        assert exact["sauc"][k] == pytest.approx(sklearn_weighted_auc(smaps[k], fmaps[k], omap), rel=1e-12)
        assert exact["sauc"][k] == shuffled_auc_exact(smaps[k], fmaps[k], omap)  # same bits
    np.testing.assert_array_equal(exact["nss"], sampled["nss"])
    np.testing.assert_array_equal(exact["kldiv"], sampled["kldiv"])
    # the sampled mode is the original's auc_shuffled_many, bit for bit
    np.testing.assert_array_equal(sampled["sauc"], ref_auc_shuffled_many(list(smaps), list(fmaps)))
    assert np.nanmax(np.abs(sampled["sauc"] - exact["sauc"])) < 0.1

    # a non-finite map is skipped like a map without fixations (no draw for it)
    smaps[2, 0, 0] = np.nan
    finite = np.isfinite(smaps).reshape(k_maps, -1).all(1)
    res = score_maps(iter(smaps), gaze, "processed", sauc_mode="sampled", finite=finite)
    assert np.isnan(res["nss"][2]) and np.isnan(res["kldiv"][2]) and np.isnan(res["sauc"][2])
    np.testing.assert_array_equal(res["sauc"], ref_auc_shuffled_many(list(smaps), list(fmaps)))


def test_score_maps_empty_omap_one_map_and_no_map():
    rng = np.random.default_rng(10)
    smaps, gaze, fmaps = made_up_trial(rng, 3)
    for k in (0, 2):
        gaze[k], fmaps[k] = np.zeros((0, 2)), 0  # map 1 is the only map with fixations: empty omap
    for mode in ("exact", "sampled"):
        assert np.isnan(score_maps(iter(smaps), gaze, "processed", mode)["sauc"]).all()
    gaze[2] = np.array([[80.0, 105.0]] * 4)
    fmaps[2, 42, 42] = 4
    exact = score_maps(iter(smaps), gaze, "processed")["sauc"]
    sampled = score_maps(iter(smaps), gaze, "processed", "sampled")["sauc"]
    assert np.isnan(exact[0]) and np.isfinite(exact[1:]).all()
    np.testing.assert_array_equal(sampled, ref_auc_shuffled_many(list(smaps), list(fmaps)))
    # one map: no other map to draw from (the original crashed): sAUC undefined, NSS and KL defined
    one = score_maps(iter(smaps[1:2]), gaze[1:2], "processed")
    assert np.isnan(one["sauc"][0]) and one["nss"][0] == nss(smaps[1], fmaps[1])
    assert all(v.shape == (0,) for v in score_maps(iter([]), [], "raw").values())


def test_unknown_sauc_mode_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(FlSaliencyError, match="--sauc-mode must be one of: exact, sampled, got 'approx'"):
        run_benchmark(SaliencySettings(tmp_path / "exp", tmp_path / "ah", tmp_path / "out", sauc_mode="approx"))
    assert not (tmp_path / "out").exists()


def test_a_label_file_error_is_said_once(dataset, tmp_path):
    folder, _ = write_experiment(tmp_path / "exp")
    import shutil

    broken = tmp_path / "ah"
    shutil.copytree(dataset, broken)
    for labels in broken.glob("*.txt"):
        labels.write_text(labels.read_text().replace("gaze_positions", "gaze"))
    lines = []
    with pytest.raises(FlSaliencyError) as e:
        run_benchmark(SaliencySettings(folder, broken, tmp_path / "out", device="cpu"), echo=lines.append)
    assert str(e.value) == "no trial could be scored: all 2 skipped"
    assert len(lines) == 2 and all(line.startswith("skipped trial 90") for line in lines)
    assert all(line.count("header") == 1 and line.count("trial 90") == 1 for line in lines)


@pytest.mark.subprocess
def test_output_dir_that_is_a_file_is_one_line(dataset, tmp_path):
    folder, _ = write_experiment(tmp_path / "exp")
    (tmp_path / "file").write_text("not a folder")
    result = subprocess.run([sys.executable, str(ROOT / "benchmark_atari_head.py"), "--experiment-dir", str(folder),
                             "--atari-head-dir", str(dataset), "--output-dir", str(tmp_path / "file")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"benchmark_atari_head.py: error: output folder {tmp_path / 'file'} is a file (or lies under one); name a folder"]


def saliency_command(folder, dataset, out, *flags):
    return [sys.executable, "-m", "fl_saliency.cli", "saliency", "--experiment-dir", str(folder),
            "--atari-head-dir", str(dataset), "--output-dir", str(out), "--device", "cpu", *flags]


@pytest.mark.slow
def test_a_full_disk_leaves_no_scores_and_the_advice_works(dataset, tmp_path, small_disk):
    folder, _ = write_experiment(tmp_path / "exp")
    out = small_disk / "out"
    stat = os.statvfs(small_disk)
    filler = small_disk / "filler"
    # Room for the lock file and the two 1 KB pickles (a page each), not for the 16 KB saliency.json as well.
    filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 4 * 4096))
    command = saliency_command(folder, dataset, out, "--method", "attention,gradient")
    first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert first.returncode == 2 and first.stderr.strip().splitlines() == [
        f"fl-saliency: error: no space left on the device of {out / 'saliency.json'}; free space and run the command again"]
    assert not out.exists()  # neither the pickles nor a temporary: the folder made for it is removed too
    filler.unlink()
    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.iterdir()) == ["saliency.csv", "saliency.gradient.pkl", "saliency.json",
                                                     "saliency.pkl"]
    assert list(json.loads((out / "saliency.json").read_text())["methods"]) == ["attention", "gradient"]


@pytest.mark.slow
def test_scores_of_another_method_are_not_overwritten_and_force_replaces_the_whole_set(dataset, tmp_path):
    folder, _ = write_experiment(tmp_path / "exp")
    out = tmp_path / "out"
    (out / ".saliency.json.k3x9.tmp").parent.mkdir()
    (out / ".saliency.json.k3x9.tmp").write_text("{")  # what a killed run leaves
    (out / "notes.txt").write_text("the user's own")
    lines = []
    run_benchmark(SaliencySettings(folder, dataset, out, trials=[902], method=["gradient"], device="cpu"),
                  echo=lines.append)
    assert lines[0] == f"removed the unfinished files of an interrupted run from {out}: .saliency.json.k3x9.tmp"
    with pytest.raises(FlSaliencyError, match=f"^{out} already holds saliency.json; pass --force to overwrite it$"):
        run_benchmark(SaliencySettings(folder, dataset, out, trials=[902], device="cpu"), echo=lines.append)
    assert list(json.loads((out / "saliency.json").read_text())["methods"]) == ["gradient"]
    lines.clear()
    run_benchmark(SaliencySettings(folder, dataset, out, trials=[902], device="cpu", force=True), echo=lines.append)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "saliency.csv", "saliency.json", "saliency.pkl"]
    assert lines[0] == "removed the scores of the replaced run: saliency.gradient.pkl"


def test_trials_not_in_the_dataset_and_a_video_method_without_a_video_are_said(dataset, tmp_path, capsys):
    folder, _ = write_experiment(tmp_path / "exp")
    summary = run_benchmark(SaliencySettings(folder, dataset, tmp_path / "out", trials=[902, 7, 902, 3],
                                             method=["attention", "gradient"], video_method="gradient", device="cpu"),
                            echo=lambda s: None)
    assert capsys.readouterr().err.splitlines() == [
        "warning: --video-method gradient has no effect without --video",
        f"warning: trials 7,3 are not BreakoutNoFrameskip-v4 trials in {dataset}: scoring 902"]
    assert list(summary["trials"]) == ["902"] and not list((tmp_path / "out").glob("*.mp4"))


@pytest.mark.parametrize("content, problem", [
    ('{"overall": {"nss": 5}}', "AttributeError: 'int' object has no attribute 'get'"),
    ('{"overall": [1]}', "AttributeError: 'list' object has no attribute 'values'"),
    ('{"overall": {"nss": {"count": 2, "mean": "x", "std": 1}}}', "TypeError: a mean that is a str"),
])
def test_export_of_a_saliency_json_that_is_not_the_commands_is_one_line(tmp_path, capsys, content, problem):
    folder, _ = write_experiment(tmp_path / "exp")
    (folder / "results.json").write_text('{"rewards": [3.0]}')
    (folder / "saliency.json").write_text(content)
    from fl_saliency.cli import main

    assert main(["export", str(folder), "--out", str(tmp_path / "hf")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"fl-saliency: error: {folder / 'saliency.json'}: not the saliency command's summary ({problem})"]
    assert not (tmp_path / "hf").exists()


def test_export_card_leaves_out_metrics_without_a_finite_mean(tmp_path):
    from fl_saliency.report.model_card import saliency_overall

    (tmp_path / "saliency.json").write_text(json.dumps({"overall": {
        "nss": {"mean": 1.5, "std": 0.5, "count": 4}, "kldiv": {"mean": None, "std": None, "count": 0},
        "sauc": {"mean": None, "std": 0.1, "count": 3}, "cc": {"mean": 0.2, "std": None, "count": 3}}}))
    assert saliency_overall([tmp_path]) == {"nss": {"mean": 1.5, "std": 0.5, "count": 4}}
    (tmp_path / "saliency.json").write_text('{"overall": {"nss": {"mean": NaN, "std": 0.5, "count": 4}}}')
    assert saliency_overall([tmp_path]) == {}
