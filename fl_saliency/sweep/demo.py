"""``fl-saliency demo``: the whole pipeline on built-in defaults, offline, in minutes on a laptop CPU.

A short training of ``cnn_sparse_fls`` on Breakout, its evaluation with a perception video,
the Atari-HEAD benchmark on a generated sample trial (real emulator frames, synthetic gaze) of its
attention, one post-hoc method and the references, and the report; run again, it only does what
is missing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fl_saliency.common import rundir
from fl_saliency.common.io import ensure_output_dir
from fl_saliency.report import require_report_extra
from fl_saliency.report.markdown import write_report
from fl_saliency.sweep.grid import SweepSettings, run_job

# 8 updates: about 75 s of training at the ~110 agent steps/s of a quiet 2-core machine (README: Quick start).
DEMO_TIMESTEPS = 8 * 1024
# Two trials, so that each one's centre bias (the references' and the information gain's) is the other's gaze.
SAMPLE_TRIALS, SAMPLE_FRAMES = ((1, 901), (2, 902)), 600
# gradient: one backward pass a batch, the cheapest post-hoc method.
DEMO_METHODS, DEMO_REFERENCES = ["attention", "gradient"], ["uniform", "center-bias", "gaze-neighbour"]


def run_demo(output_dir: Path, echo=print) -> Path:
    from fl_saliency.scoring.atari_head.sample import make_sample_trial

    require_report_extra("fl-saliency demo (it ends with the report)")
    ensure_output_dir(output_dir)
    sample_dir = output_dir / "atari_head_sample"
    for seed, number in SAMPLE_TRIALS:
        if not any(sample_dir.glob(f"{number}_*.txt")):
            echo(f"[1/4] recording sample Atari-HEAD trial {number} ({SAMPLE_FRAMES} Breakout frames, synthetic gaze)")
            make_sample_trial("Breakout", SAMPLE_FRAMES, sample_dir, layout="release2", seed=seed, trial_number=number)
    # The job a one-job sweep would run, with a perception video and the demo's methods and references.
    job = SweepSettings(games=["Breakout"], networks=["cnn_sparse_fls"], output_dir=str(output_dir),
                        num_timesteps=DEMO_TIMESTEPS, evaluate=(2, 1), max_eplen=5000,
                        saliency=sample_dir).job("Breakout", "cnn_sparse_fls", 1)
    job = replace(job, evaluation=replace(job.evaluation, raw_obs=True, processed_obs=True),
                  saliency=replace(job.saliency, method=DEMO_METHODS, references=DEMO_REFERENCES))
    echo(f"[2/4] training {job.network} on {job.game} for {DEMO_TIMESTEPS} steps (progress below), then evaluating "
         f"and scoring")
    result = run_job(job)
    echo(f"      {result['status']}: {result['message']} ({result['seconds']} s)")
    if result["status"] == "failed":
        from fl_saliency.common.errors import FlSaliencyError

        raise FlSaliencyError(f"demo job failed: {result['message'].splitlines()[0]}")
    import json

    run = job.folder
    scores = json.loads((run / rundir.SUMMARY_FILE).read_text())["rewards"]
    saliency = json.loads((run / rundir.SALIENCY_JSON).read_text())
    echo(f"      evaluation: mean score {scores['mean']:.1f} over {scores['n']} games (the paper's agents train "
         f"for 5e7 steps)")
    for kind in ("methods", "references"):
        for name, result in saliency[kind].items():
            echo(f"      NSS vs synthetic gaze, {kind[:-1]} {name}: " + (
                f"{result['overall']['nss']['mean']:.3f}" if result["overall"]["nss"]["count"] else "undefined"))
    echo("[3/4] writing the report")
    report = write_report(output_dir)
    echo("[4/4] outputs:")
    for label, path in [("model (Baselines format)", run / rundir.MODEL_FILE), ("training logs", run / rundir.LOGS_DIR),
                        ("TensorBoard", run / rundir.TB_DIR), ("evaluation", run / rundir.RESULTS_FILE),
                        ("attention video", run / rundir.perception_file("mkv")),
                        ("saliency scores", run / rundir.SALIENCY_JSON),
                        ("report", report), ("report page (browser)", report.with_name("report.html"))]:
        echo(f"      {label:<26} {path}")
    return report
