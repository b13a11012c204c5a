import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fl_saliency.ppo.logger import ProgressLogger
from fl_saliency.common.rundir import read_saliency
from fl_saliency.report.markdown import write_report
from fl_saliency.report.runs import read_sweep
from helpers import CONFIG, FORK, SWEEP_RANDOM_HUMAN, SWEEP_SCORES, fake_sweep, run_folder

ROOT = Path(__file__).resolve().parents[2]
FORK_EVENTS, = FORK.glob("events.out.tfevents.*")


def quiet_report(root: Path) -> tuple[str, list[str]]:
    lines = []
    return write_report(root, echo=lines.append).read_text(), lines


def test_report_of_the_papers_released_layout_with_missing_pieces(tmp_path):
    for seed, rewards in (("01", [600.0, 640.0]), ("09", None)):
        folder = run_folder(tmp_path, seed)
        if rewards:
            (folder / "eval.pkl").write_bytes(pickle.dumps({"rewards": rewards, "lengths": [1.0, 2.0]}))
    runs = read_sweep(tmp_path)
    assert [(r.seed, r.mean_score) for r in runs] == [("01", 620.0), ("09", None)]
    text, lines = quiet_report(tmp_path)
    assert lines == [] and "Unreadable" not in text
    assert "| Breakout | cnn_sparse_fls | 2 | 1 | 620 | 624 |" in text
    assert "— (no run has a learning curve)" in text
    # Learning curves from progress.csv, one line per network with a band over seeds.
    for seed, scale in (("01", 1.0), ("09", 2.0)):
        logs = tmp_path / "Breakout.cnn_sparse_fls" / seed / "logs"
        logs.mkdir()
        (logs / "progress.csv").write_text("nupdates,total_timesteps,eprewmean\n1,1024,nan\n2,2048,1.5\n3,3072,"
                                           f"{3 * scale}\n")
    runs = read_sweep(tmp_path)
    assert runs[1].curve[0].tolist() == [2048.0, 3072.0] and runs[1].curve[1].tolist() == [1.5, 6.0]
    text, _ = quiet_report(tmp_path)
    assert "![curves_Breakout](curves_Breakout.png)" in text
    from PIL import Image

    assert Image.open(tmp_path / "curves_Breakout.png").size[0] > 300


def test_fork_event_file_is_read_against_total_timesteps_not_the_dump_counter(tmp_path):
    """The fork's logger numbers its TensorBoard events 1, 2, ... (the update); the agent steps are the
    total_timesteps scalar (update x 1024 with 8 environments of 128 steps)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    events = [e for e in EventFileLoader(str(FORK_EVENTS)).Load() if e.summary.value]
    assert [e.step for e in events] == list(range(1, 13))  # what the x-axis was read from before
    folder = run_folder(tmp_path, "01")
    shutil.copy(FORK_EVENTS, folder)  # the released runs ship the event file beside model.pkl
    run, = read_sweep(tmp_path)
    steps, values = run.curve
    # Updates 1 and 2 had no finished game (NaN) and are left out.
    np.testing.assert_array_equal(steps, 1024.0 * np.arange(3, 13))
    np.testing.assert_allclose(values, 1.0 + 0.25 * np.arange(10))
    text, lines = quiet_report(tmp_path)
    assert lines == [] and "![curves_Breakout](curves_Breakout.png)" in text
    # The same logger's progress.csv of the same run gives the same curve.
    (folder / "logs").mkdir()
    shutil.copy(FORK / "progress.csv", folder / "logs" / "progress.csv")
    from_csv = read_sweep(tmp_path)[0].curve
    np.testing.assert_array_equal(from_csv[0], steps)
    np.testing.assert_allclose(from_csv[1], values, rtol=1e-7)  # the events hold float32


def test_both_historical_saliency_formats_give_the_same_scores(tmp_path):
    current = read_saliency(FORK / "saliency.pkl")
    first = read_saliency(FORK / "saliency_first_version.pkl")
    assert [r["trial_number"] for r in current] == [r["trial_number"] for r in first] == [101, 102]
    for a, b in zip(current, first):
        for metric in ("nss", "kldiv", "sauc"):
            np.testing.assert_array_equal(a["metrics"][metric], b["metrics"][metric])
    # In the report: the mean over every defined map of every trial, as a plain numpy oracle.
    with open(FORK / "saliency.pkl", "rb") as f:
        raw = pickle.load(f)  # our own fixture, trusted
    expected_nss = np.nanmean(np.concatenate([r["metrics"]["nss"] for r in raw]))
    for seed, name in (("01", "saliency.pkl"), ("09", "saliency_first_version.pkl")):
        shutil.copy(FORK / name, run_folder(tmp_path, seed) / "saliency.pkl")
    runs = read_sweep(tmp_path)
    assert [r.saliency["nss"] for r in runs] == pytest.approx([expected_nss, expected_nss], rel=1e-12)
    text, lines = quiet_report(tmp_path)
    assert lines == [] and f"| Breakout | cnn_sparse_fls | 2 | {expected_nss:.4g} ± 0 |" in text


def write_bad(folder: Path, case: str) -> str:
    """One broken file of a run; returns its path in the run folder."""
    if case.startswith("results"):
        content = {"results-binary": b"\x80\x03\xff\x00binary", "results-truncated": b'{"rewards": [1.0, 2',
                   "results-list": b"[1,2]", "results-string-rewards": b'{"rewards": "abc"}'}[case]
        (folder / "results.json").write_bytes(content)
        return "results.json"
    if case == "progress":
        (folder / "logs").mkdir()
        (folder / "logs" / "progress.csv").write_text("nupdates,total_timesteps,eprewmean\n1,abc,xyz\n")
        return "logs/progress.csv"
    (folder / "saliency.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    return "saliency.pkl"


BAD_CASES = ["results-binary", "results-truncated", "results-list", "results-string-rewards", "progress", "saliency"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_one_bad_run_is_named_in_one_line_and_the_rest_reported(tmp_path, case):
    good = run_folder(tmp_path, "01")
    (good / "results.json").write_text(json.dumps({"rewards": [600.0, 640.0]}))
    name = write_bad(run_folder(tmp_path, "09"), case)
    text, lines = quiet_report(tmp_path)
    assert len(lines) == 1 and "Breakout.cnn_sparse_fls/09/" + name in lines[0]
    assert "## Unreadable files" in text and f"Breakout.cnn_sparse_fls/09/{name}" in text
    assert "| Breakout | cnn_sparse_fls | 2 | 1 | 620 | 624 |" in text  # the good run, still counted


@pytest.mark.subprocess
def test_report_command_with_every_kind_of_bad_run(tmp_path):
    for i, case in enumerate(BAD_CASES):
        write_bad(run_folder(tmp_path, f"{i:02d}"), case)
    (run_folder(tmp_path, "99", "MsPacman.cnn") / "results.json").write_text(json.dumps({"rewards": [4000.0]}))
    result = subprocess.run([sys.executable, "-m", "fl_saliency.cli", "report", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert len([line for line in result.stdout.splitlines() if line.startswith("unreadable")]) == len(BAD_CASES)
    assert "| MsPacman | cnn | 1 | 1 | 4000 | 4,874 |" in (tmp_path / "report.md").read_text()


@pytest.mark.subprocess
def test_missing_sweep_folder_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fl_saliency.cli", "report", str(tmp_path / "nothing")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "sweep folder not found" in result.stderr


def one_run_sweep(root):
    run = root / "Breakout.cnn" / "01"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"network": "cnn", "env_name": "BreakoutNoFrameskip-v4"}))
    return root


def test_manifest_totals_and_an_unreadable_manifest(tmp_path):
    root = one_run_sweep(tmp_path / "sweep")
    stage = lambda node, seconds, **kw: {"node": node, "stage": "trained", "seconds": seconds, **kw}
    jobs = {"Breakout.cnn/01": {"status": "done", "attempts": 2, "seconds": 3600.0, "stages": [
                stage("a", 1800.0, agent_steps=1000, agent_steps_per_s=0.6), stage("b", 1800.0, agent_steps=1000)]},
            "Breakout.cnn/02": {"status": "failed", "attempts": 1, "seconds": 0.0, "stages": []}}
    (root / "sweep.json").write_text(json.dumps({"jobs": jobs}))
    text = write_report(root, echo=lambda line: None).read_text()
    # 2,000 steps over 3,600 training seconds = 0.56 (one decimal); 3,600 job-seconds = 1 hour; nodes a, b
    assert "| 2 | 1 done, 1 failed | 1.000 | 3 | 2 | 2000 | 0.6 |" in text
    (root / "sweep.json").write_text(json.dumps({"jobs": {"x": {"status": "done"}}}))
    lines = []
    text = write_report(root, echo=lines.append).read_text()
    assert lines == [f"unreadable, shown as missing: {root / 'sweep.json'}: not a sweep manifest (KeyError: 'seconds')"]
    assert "## Sweep (sweep.json)" not in text and "not a sweep manifest" in text


@pytest.mark.subprocess
def test_report_into_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    result = subprocess.run([sys.executable, "-m", "fl_saliency.cli", "report", str(one_run_sweep(tmp_path / "sweep")),
                             "--output-dir", str(tmp_path / "file")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"fl-saliency: error: output folder {tmp_path / 'file'} is a file (or lies under one); name a folder"]


@pytest.mark.subprocess
def test_report_onto_a_full_disk_is_one_line(tmp_path, small_disk):
    with open(small_disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    result = subprocess.run([sys.executable, "-m", "fl_saliency.cli", "report", str(one_run_sweep(tmp_path / "sweep")),
                             "--output-dir", str(small_disk / "r")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"fl-saliency: error: no space left on the device of {small_disk / 'r' / 'report.md'}; "
        f"free space and run the command again"], result.stderr
    assert list((small_disk / "r").iterdir()) == []


# Aggregates across games (rliable): three games, two networks, three seeds each.
def rliable_reference(seed: int = 0):
    from rliable import library as rly, metrics

    table = SWEEP_RANDOM_HUMAN
    matrices = {network: np.array([[(s - table[g][0]) / (table[g][1] - table[g][0]) for s in SWEEP_SCORES[g, network]]
                                   for g in table]).T for network in ("cnn", "cnn_sparse_fls")}

    def four(x):
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_median(x), metrics.aggregate_mean(x),
                         metrics.aggregate_optimality_gap(x)])

    np.random.seed(seed)  # rliable 1.2.0 resamples from NumPy's global state (np.random.choice)
    aggregates = rly.get_interval_estimates(matrices, four, reps=200)
    np.random.seed(seed)
    improvement = rly.get_interval_estimates({"cnn_sparse_fls": (matrices["cnn_sparse_fls"], matrices["cnn"])},
                                             metrics.probability_of_improvement, reps=200)
    return matrices, aggregates, improvement


@pytest.mark.slow
def test_aggregates_are_rliables_on_the_same_score_matrix(tmp_path, few_reps):
    from fl_saliency.report import aggregate

    fake_sweep(tmp_path, SWEEP_SCORES, saliency=True)
    text, lines = quiet_report(tmp_path)
    matrices, (points, intervals), (pi_point, pi_interval) = rliable_reference()
    # An oracle independent of rliable: the IQM of 9 values drops the 2 lowest and 2 highest.
    assert points["cnn"][0] == pytest.approx(np.mean(np.sort(matrices["cnn"].ravel())[2:7]), rel=1e-12)
    # Enduro by hand: (300 - 0) / (860.5 - 0)
    assert matrices["cnn"][0, 1] == pytest.approx(300 / 860.5)
    runs = read_sweep(tmp_path)
    cells = {}
    for run in runs:
        cells.setdefault((run.game, run.network), []).append(run.mean_score)
    ours = aggregate.build_matrices(aggregate.normalised_score_cells(cells)[0])
    np.testing.assert_allclose(ours["cnn"].scores, matrices["cnn"], rtol=1e-12)
    estimates = aggregate.aggregates(ours)
    for network in matrices:
        for i, name in enumerate(aggregate.SCORE_AGGREGATES):
            assert estimates[network][name].point == pytest.approx(points[network][i], rel=1e-12)
            assert estimates[network][name].interval == pytest.approx(tuple(intervals[network][:, i]), rel=1e-12)
    games, improvement = aggregate.improvement_over(ours)["cnn_sparse_fls"]
    assert games == list(SWEEP_RANDOM_HUMAN) and improvement.point == pytest.approx(pi_point["cnn_sparse_fls"])
    assert improvement.interval == pytest.approx(tuple(pi_interval["cnn_sparse_fls"][:, 0]))
    # Probability of improvement by hand: P(X > Y) + P(X = Y) / 2 over the 9 run pairs of each game.
    x, y = matrices["cnn_sparse_fls"], matrices["cnn"]
    by_hand = np.mean([np.mean((x[:, g, None] > y[None, :, g]) + 0.5 * (x[:, g, None] == y[None, :, g]))
                       for g in range(3)])
    assert improvement.point == pytest.approx(by_hand)
    # The report prints the same numbers and writes the plots.
    iqm = estimates["cnn"]["IQM"]
    assert (f"| cnn | Breakout, Enduro, SpaceInvaders | 3 | {iqm.point:.3g} [{iqm.interval[0]:.3g}, "
            f"{iqm.interval[1]:.3g}] |") in text
    assert f"| cnn_sparse_fls | Breakout, Enduro, SpaceInvaders | {improvement.point:.3g} [" in text
    from PIL import Image

    for name in ("aggregates", "performance_profiles", "saliency_nss", "saliency_sauc", "saliency_kldiv"):
        assert f"![{name}]({name}.png)" in text and Image.open(tmp_path / f"{name}.png").size[0] > 300
    # Saliency: every run has the fixture's scores, so each aggregate and its interval is that one value.
    with open(FORK / "saliency.pkl", "rb") as f:
        raw = pickle.load(f)  # our own fixture, trusted
    nss = np.nanmean(np.concatenate([r["metrics"]["nss"] for r in raw]))
    assert f"| cnn_sparse_fls | Breakout, Enduro, SpaceInvaders | 3 | {nss:.3g} [{nss:.3g}, {nss:.3g}] |" in text


@pytest.mark.slow
def test_too_few_seeds_give_no_interval_and_say_so(tmp_path, few_reps):
    few = {key: values[:2] for key, values in SWEEP_SCORES.items()}
    few["Breakout", "cnn"] = SWEEP_SCORES["Breakout", "cnn"]  # 3 runs of one game do not make up for the others
    few["NotAGame", "cnn"] = [5.0, 6.0, 7.0]
    fake_sweep(tmp_path, few)
    text, _ = quiet_report(tmp_path)
    section = text.split("## Aggregates")[1]
    assert "Left out (no random and human scores): NotAGame." in section
    assert "| cnn | Breakout, Enduro, SpaceInvaders | 2 |" in section
    rows = [line for line in section.splitlines() if line.startswith("| cnn")]
    assert len(rows) == 3 and all("[" not in row for row in rows)  # two aggregate rows, one improvement row
    assert section.count("no interval: 2 run(s) per game, 3 needed") == 2


@pytest.fixture(scope="module")
def scored_sweep(tmp_path_factory):
    """A sweep whose run holds a saliency.json written by run_benchmark (attention, gradient and the
    references on a generated trial), beside a run holding only the paper's saliency.pkl."""
    from fl_saliency.scoring.benchmark import SaliencySettings, run_benchmark
    from fl_saliency.scoring.atari_head.sample import make_sample_trial
    from helpers import write_experiment

    root = tmp_path_factory.mktemp("scored")
    make_sample_trial("Breakout", 25, root / "ah", layout="release2", seed=1, trial_number=903)
    folder, _ = write_experiment(root / "sweep" / "Breakout.cnn_sparse_fls" / "01")
    summary = run_benchmark(SaliencySettings(folder, root / "ah", folder, device="cpu", processed_obs=True,
                                             method=["attention", "gradient"],
                                             references=["uniform", "center-bias", "gaze-neighbour"]), echo=print)
    shutil.copy(FORK / "saliency.pkl", run_folder(root / "sweep", "02", "Enduro.cnn_sparse_fls") / "saliency.pkl")
    return root / "sweep", summary


@pytest.mark.slow
def test_methods_table_holds_each_methods_and_references_mean_and_interval(scored_sweep):
    root, summary = scored_sweep
    report, problems = quiet_report(root)
    assert problems == []
    section = report.split("## Saliency methods and references against gaze")[1].split("\n## ")[0]
    assert "### Breakout" in section and "### Enduro" not in section  # a saliency.pkl alone has no such table
    table = [line for line in section.splitlines() if line.startswith("| cnn_sparse_fls/01")]
    cells = {(row[1], row[2]): row[3:] for row in ([c.strip() for c in line.strip("|").split("|")] for line in table)}
    assert list(cells) == [("method", "attention"), ("method", "gradient"), ("reference", "uniform"),
                           ("reference", "center-bias"), ("reference", "gaze-neighbour")]
    header = [c.strip() for c in section.split("| run |")[1].splitlines()[0].strip("|").split("|")][2:]
    assert header == ["NSS ↑", "KL ↓", "sAUC ↑", "AUC-Judd ↑", "CC ↑", "SIM ↑", "MIT KL ↓", "IG (bits/fix) ↑"]
    metrics = ["nss", "kldiv", "sauc", "auc_judd", "cc", "sim", "mit_kldiv", "info_gain"]
    for (kind, name), row in cells.items():
        overall = summary[kind + "s"][name]["overall"]
        for metric, cell in zip(metrics, row):
            stats = overall[metric]
            if stats["mean"] is None:
                assert cell == "—"
            else:
                mean, low, high = (float(v) for v in cell.replace("[", "").replace("]", "").replace(",", "").split())
                assert mean == pytest.approx(stats["mean"], rel=5e-3)
                assert (low, high) == pytest.approx((stats["ci_low"], stats["ci_high"]), rel=5e-3, abs=1e-3)
                assert low <= mean <= high
    plot = root / "saliency_methods_Breakout.png"
    assert plot.stat().st_size > 10_000 and "![saliency_methods_Breakout](saliency_methods_Breakout.png)" in section
    html = (root / "report.html").read_text()
    assert '<img src="saliency_methods_Breakout.png"' in html and "<th class=\"num\">NSS ↑</th>" in html


def test_unreadable_saliency_json_is_named_and_the_rest_reported(tmp_path):
    folder = run_folder(tmp_path, "01")
    (folder / "saliency.json").write_text(json.dumps({"methods": {"attention": {"overall": {"nss": {"mean": "x"}}}}}))
    report, problems = quiet_report(tmp_path)
    assert problems == [f"unreadable, shown as missing: {folder / 'saliency.json'}: not the saliency command's "
                        "summary (TypeError: a mean that is a str)"]
    assert "— (no run has a saliency.json)" in report


def interval(cell: str) -> tuple[float, float, float]:
    """'mean [low, high]' of a report cell."""
    mean, low, high = (float(v) for v in cell.replace("[", "").replace("]", "").replace(",", "").split())
    return mean, low, high


@pytest.mark.slow
def test_faithfulness_table_holds_the_commands_numbers(tmp_path):
    from fl_saliency.scoring.atari_head.sample import make_sample_trial
    from fl_saliency.cli import main
    from helpers import write_experiment

    make_sample_trial("Breakout", 25, tmp_path / "ah", layout="release2", seed=1, trial_number=903)
    folder, _ = write_experiment(tmp_path / "sweep" / "Breakout.cnn" / "01", network="cnn")  # untrained
    assert main(["faithfulness", "--experiment-dir", str(folder), "--atari-head-dir", str(tmp_path / "ah"),
                 "--output-dir", str(folder), "--method", "gradient,attention", "--max-maps", "3",
                 "--step", "1764", "--device", "cpu"]) == 0
    summary = json.loads((folder / "faithfulness.json").read_text())
    report, problems = quiet_report(tmp_path / "sweep")
    assert problems == []
    section = report.split("## Faithfulness to the agent (faithfulness.json)")[1].split("\n## ")[0]
    assert "### Breakout" in section
    rows = {cells[1]: cells for cells in ([c.strip() for c in line.strip("|").split("|")]
                                          for line in section.splitlines() if line.startswith("| cnn/01 |"))}
    assert list(rows) == ["gradient", "attention"]
    for name, cells in rows.items():
        result = summary["methods"][name]
        assert cells[2] == "3"
        for cell, key in zip(cells[3:5], ("deletion_auc", "insertion_auc")):
            stats = result[key]
            assert interval(cell) == pytest.approx((stats["mean"], stats["ci_low"], stats["ci_high"]), rel=5e-3)
        spearman = result["randomisation"]["spearman"][-1]
        assert cells[5] == "—" if spearman is None else float(cells[5]) == pytest.approx(spearman, abs=5e-4)
        assert cells[6] == ("yes (> 0.9)" if result["randomisation"]["flagged"] else "no")
    assert rows["attention"][5] == "—"  # cnn's attention is all zero: no correlation
    assert summary["methods"]["gradient"]["randomisation"]["spearman"][-1] is not None
    assert "<th class=\"num\">deletion AUC ↓</th>" in (tmp_path / "sweep" / "report.html").read_text()


def test_unreadable_faithfulness_json_is_named_and_the_rest_reported(tmp_path):
    folder = run_folder(tmp_path, "01")
    (folder / "faithfulness.json").write_text(json.dumps({"maps": 2, "methods": {"gradient": {}}}))
    report, problems = quiet_report(tmp_path)
    assert problems == [f"unreadable, shown as missing: {folder / 'faithfulness.json'}: not the faithfulness "
                        "command's summary (KeyError: 'deletion_auc')"]
    assert "— (no run has a faithfulness.json)" in report


def test_a_single_train_run_folder_is_reported(tmp_path, capsys):
    from fl_saliency.cli import main

    run = tmp_path / "my-run"  # as train writes it, evaluated and scored into eval/ (their default)
    run.mkdir()
    (run / "config.json").write_text(json.dumps(CONFIG))
    logger = ProgressLogger(run, ["total_timesteps", "eprewmean"], step_key="total_timesteps", echo=lambda s: None)
    for step, value in [(1024, float("nan")), (2048, 1.5), (3072, 2.5)]:
        logger.log({"total_timesteps": step, "eprewmean": value})
    logger.close()
    (run / "eval").mkdir()
    (run / "eval" / "results.json").write_text(json.dumps({"rewards": [3.0, 5.0, 7.0]}))
    shutil.copy(FORK / "saliency.pkl", run / "eval" / "saliency.pkl")
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out == f"report written to {run / 'report.md'}\n"
    report = (run / "report.md").read_text()
    assert "| Breakout | cnn_sparse_fls | 1 | 1 | 5 | 624 |" in report  # mean of 3, 5, 7; the paper's Table 3
    nss = read_saliency(FORK / "saliency.pkl")
    mean_nss = float(np.nanmean(np.concatenate([r["metrics"]["nss"] for r in nss])))
    assert f"| Breakout | cnn_sparse_fls | 1 | {mean_nss:.4g} |" in report
    assert (run / "curves_Breakout.png").is_file() and "![curves_Breakout](curves_Breakout.png)" in report


def test_a_folder_that_is_neither_run_nor_sweep_is_one_line(tmp_path, capsys):
    from fl_saliency.cli import main

    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"fl-saliency: error: {tmp_path} is neither a train run folder (config.json) "
                                       "nor a sweep folder (<Game>.<network>/<seed>/ run folders)\n")


def test_nan_and_infinity_in_saliency_json_show_a_dash_and_a_footnote(tmp_path):
    folder = run_folder(tmp_path, "01")
    # JSON as Python's json module writes non-finite floats (NaN, Infinity), which it also reads back
    (folder / "saliency.json").write_text(
        '{"methods": {"attention": {"overall": {"nss": {"mean": NaN, "ci_low": NaN, "ci_high": NaN}, '
        '"sauc": {"mean": 0.61, "ci_low": -Infinity, "ci_high": 1.26}}}, '
        '"gradient": {"overall": {"nss": {"mean": 0.5, "ci_low": 0.25, "ci_high": 0.75}, "sauc": {"mean": 0.55}}}}}')
    report, problems = quiet_report(tmp_path)
    assert problems == []
    assert "| cnn_sparse_fls/01 | method | attention | — † | 0.61 † |" in report
    assert "| cnn_sparse_fls/01 | method | gradient | 0.5 [0.25, 0.75] | 0.55 |" in report
    assert report.count("† The file holds NaN or Infinity here") == 1
    import re

    assert not [line for line in report.splitlines() if line.startswith("|") and re.search(r"\b(nan|inf)\b", line, re.I)]
    assert (tmp_path / "saliency_methods_Breakout.png").is_file()
