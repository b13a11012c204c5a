"""Why networks.Dense stores its weight (in, out): fc1 (3136 -> 512) in both layouts, side by side.

nn.Linear keeps (out, in) and computes x @ W.T; Dense keeps (in, out) and computes x @ W. Prints
the median time of each, alternating, for the small no-grad batches of acting (one thread, as
the rollout and the evaluation run it) and for a 256-sample training minibatch (forward and
backward, all threads), and the ratio.

    .venv/bin/python benchmarks/dense_layout.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

IN_FEATURES, OUT_FEATURES = 64 * 7 * 7, 512


def timed(step, repeats: int) -> float:
    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats * 1e6


def compare(batch: int, threads: int, backward: bool, rounds: int) -> tuple[float, float]:
    """Median microseconds per call of (out, in) and (in, out)."""
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    out_in = torch.randn(OUT_FEATURES, IN_FEATURES, generator=generator).requires_grad_(backward)
    in_out = out_in.detach().t().contiguous().requires_grad_(backward)
    bias = torch.zeros(OUT_FEATURES, requires_grad=backward)
    x = torch.randn(batch, IN_FEATURES, generator=generator)

    def run(layer):
        if backward:
            return lambda: layer().sum().backward()
        return lambda: torch.no_grad()(layer)()

    linear = run(lambda: F.linear(x, out_in, bias))
    dense = run(lambda: torch.addmm(bias, x, in_out))
    repeats = 20 if backward else 500
    times = [(timed(linear, repeats), timed(dense, repeats)) for _ in range(rounds)]
    return float(np.median([t[0] for t in times])), float(np.median([t[1] for t in times]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are printed")
    args = parser.parse_args()
    cores = torch.get_num_threads()
    print(f"fc1 {IN_FEATURES} -> {OUT_FEATURES}, torch {torch.__version__}; median us per call")
    print(f"{'case':<44} {'(out,in) x@W.T':>15} {'(in,out) x@W':>14} {'speed-up':>9}")
    cases = [(f"acting, batch {b}, 1 thread, no grad", b, 1, False) for b in (4, 8, 16)]
    cases.append((f"training minibatch 256, {cores} threads, fwd+bwd", 256, cores, True))
    for name, batch, threads, backward in cases:
        linear, dense = compare(batch, threads, backward, args.rounds)
        print(f"{name:<44} {linear:15.0f} {dense:14.0f} {linear / dense:8.2f}x")


if __name__ == "__main__":
    main()
