"""The same checkpoint's evaluation scores under both environment backends (baselines, ale-vector).

    .venv/bin/python benchmarks/backend_scores.py --experiment-dir RUN [--num-env 8 --evals-per-env 4]

Prints per backend: games, mean score with its standard error, mean game length (Monitor `l`,
which counts Baselines' hidden reset steps on `baselines` only) and the difference of the means
in standard errors.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np

from fl_saliency.evaluation.evaluate import EvalSettings, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment-dir", type=Path, required=True)
    parser.add_argument("--num-env", type=int, default=8)
    parser.add_argument("--evals-per-env", type=int, default=4)
    parser.add_argument("--max-eplen", type=int, default=27_000)
    args = parser.parse_args()
    stats = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("baselines", "ale-vector"):
            evaluate(EvalSettings(experiment_dir=args.experiment_dir, output_dir=Path(tmp) / backend,
                                  num_env=args.num_env, evals_per_env=args.evals_per_env, max_eplen=args.max_eplen,
                                  env_backend=backend, device="cpu"), echo=lambda s: None)
            results = json.loads((Path(tmp) / backend / "results.json").read_text())
            r = np.array(results["rewards"])
            stats[backend] = (r.mean(), r.std(ddof=1) / math.sqrt(len(r)), np.mean(results["lengths"]), len(r))
    config = json.loads((args.experiment_dir / "config.json").read_text())
    print(f"{config['network']} on {config['env_name']} ({args.experiment_dir})")
    for backend, (mean, sem, length, n) in stats.items():
        print(f"{backend:<11} {n:4d} games  score {mean:8.2f} ± {sem:6.2f} (s.e.)  mean length {length:8.1f}")
    (m1, s1, *_), (m2, s2, *_) = stats.values()
    print(f"difference: {m2 - m1:+.2f} = {(m2 - m1) / math.hypot(s1, s2):+.2f} standard errors")


if __name__ == "__main__":
    main()
