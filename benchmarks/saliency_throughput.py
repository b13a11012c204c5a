"""Saliency benchmark throughput, measured side by side in one run.

1. Dataset frames per second end to end (streaming the .tar.bz2, preprocessing, network,
   rendering, NSS + KL + exact sAUC, outputs) for cnn_sparse_fls and cnn_dense_fls on a
   generated 2,000-frame Breakout trial; target >= 1,000 frames/s for the sparse networks.
2. Exact vs sampled sAUC time on the same maps (that trial's saliency maps, fixation maps and
   omaps, made as the command makes them), the per-map sAUC calls alone; target: exact >= 50x
   faster.

    .venv/bin/python benchmarks/saliency_throughput.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fl_saliency.scoring.benchmark import SaliencySettings, run_benchmark, saliency_maps, trial_maps, trial_peak
from fl_saliency.scoring.atari_head.dataset import AtariHeadDataset
from fl_saliency.scoring.atari_head.gaze import fixation_maps, trial_gaze
from fl_saliency.scoring.gaze_metrics import SHUFFLED_AUC, other_maps_for_sauc
from fl_saliency.scoring.atari_head.sample import make_sample_trial
from fl_saliency.agents.checkpoint import save_config, save_model
from fl_saliency.agents.networks import ActorCritic


def experiment(folder: Path, network: str) -> Path:
    torch.manual_seed(0)
    save_model(ActorCritic(network, 4), folder / "model.pkl")
    save_config({"network": network, "env_name": "BreakoutNoFrameskip-v4"}, folder / "config.json")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_sample_trial("Breakout", args.frames, tmp / "ah", layout="release2")
        print(f"Breakout sample trial, {args.frames} frames; {torch.get_num_threads()} torch threads")
        for network in ("cnn_sparse_fls", "cnn_dense_fls"):
            folder = experiment(tmp / network, network)
            t = time.perf_counter()
            run_benchmark(SaliencySettings(folder, tmp / "ah", tmp / f"out_{network}", device="cpu"), echo=lambda s: None)
            elapsed = time.perf_counter() - t
            print(f"end to end, {network:<16} {args.frames / elapsed:8.0f} frames/s  ({elapsed:.1f} s)")
        print("target: >= 1,000 frames/s for the sparse networks")

        # The same maps through both sAUC modes.
        dataset = AtariHeadDataset(tmp / "ah")
        trial = dataset.trials("Breakout")[0]
        model = ActorCritic("cnn_sparse_fls", 4).eval()
        attention = trial_maps(model, lambda: dataset.frames(trial), ["attention"], 64, torch.device("cpu"))["attention"]
        smaps = np.stack(list(saliency_maps(attention, model, trial_peak(attention, model), "raw")))
        gaze = [trial_gaze(dataset.labels(trial).gaze, k) for k in range(len(smaps))]
        fmaps = [fixation_maps(g)[0] for g in gaze]
        others = other_maps_for_sauc([int(f.sum()) for f in fmaps])
        scored = [(s, f, fixation_maps(np.concatenate([gaze[j] for j in idx]))[0])
                  for s, f, idx in zip(smaps, fmaps, others) if idx is not None]
        timings = {}
        for mode, shuffled_auc in SHUFFLED_AUC.items():
            t = time.process_time()  # single-threaded: CPU time, robust to other load
            values = [shuffled_auc(s, f, o) for s, f, o in scored]
            timings[mode] = time.process_time() - t
            print(f"sAUC {mode:<8} {timings[mode]:8.3f} s for {len(scored)} maps with fixations, "
                  f"mean {np.nanmean(values):.4f}")
        print(f"sampled / exact time: {timings['sampled'] / timings['exact']:.0f}x  (target >= 50x)")
        print(json.dumps({k: round(v, 4) for k, v in timings.items()}))


if __name__ == "__main__":
    main()
