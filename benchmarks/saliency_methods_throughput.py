"""Saliency methods' throughput (maps per CPU second) next to the bound the network allows.

For each method and network: maps/s of the method on random observations, and the bound = the
network's own samples/s (forward, or forward and backward to the input for gradient methods) at
the batch size the method runs, divided by the passes one map costs; the ratio is the target
(>= 0.8). The ``loop`` column is what a per-map loop of single-sample passes would reach (the
original's perturbation code runs one mask at a time). One torch thread, CPU time, so that a
loaded machine measures the same. ``attention`` is not measured on ``cnn``: that network has no
attention of its own, its map is all zeros (the forward pass and the rendering of zeros).

    .venv/bin/python benchmarks/saliency_methods_throughput.py [--repeats 5] [--networks cnn]
        [--methods smoothgrad,integrated-gradients]
"""

from __future__ import annotations

import argparse
import time

import torch

from fl_saliency.methods import METHODS, greedy_actions, perturbation, rise
from fl_saliency.methods.gradients import INPUTS_PER_PASS as GRADIENT_INPUTS_PER_PASS, IG_STEPS, SMOOTHGRAD_SAMPLES
from fl_saliency.agents.networks import NETWORKS, ActorCritic, PlainCNN

# method: (passes per map, backward too, observations per measured call, batch size of its passes)
COST = {
    "attention": (1, False, 256, 256),
    "perturbation": (len(perturbation.masks()) + 1, False, 2, perturbation.PERTURBED_INPUTS_PER_PASS),
    "perturbation-critic": (len(perturbation.masks()) + 1, False, 2, perturbation.PERTURBED_INPUTS_PER_PASS),
    "gradient": (1, True, 256, 256),
    "smoothgrad": (SMOOTHGRAD_SAMPLES, True, 5, GRADIENT_INPUTS_PER_PASS),
    "integrated-gradients": (IG_STEPS, True, 5, GRADIENT_INPUTS_PER_PASS),
    "gradcam": (1, True, 256, 256),
    "rise": (rise.NUM_MASKS, False, 1, rise.MASKED_INPUTS_PER_PASS),
}


def cpu_seconds(functions, repeats: int) -> list[float]:
    """Each function's least CPU time over ``repeats`` rounds; run in turns, so that another
    process's load, which comes and goes, weighs on a method and its bound alike."""
    for function in functions:
        function()  # warm-up
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for k, function in enumerate(functions):
            t = time.process_time()
            function()
            best[k] = min(best[k], time.process_time() - t)
    return best


def network_pass(model: ActorCritic, batch: int, backward: bool):
    """One forward (and backward to the input) of the network on ``batch`` scaled inputs."""
    x = torch.rand(batch, 4, 84, 84).contiguous(memory_format=torch.channels_last)

    def run():
        if backward:
            x.requires_grad_()
            torch.autograd.grad(model.forward_scaled(x)[0][:, 0].sum(), x)
        else:
            with torch.no_grad():
                model.forward_scaled(x)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds; each function's fastest counts")
    parser.add_argument("--networks", default="cnn,cnn_sparse_fls", help="comma-separated network names")
    parser.add_argument("--methods", default=",".join(COST), help="comma-separated, from: " + ",".join(COST))
    args = parser.parse_args()
    for name, known in (("network", NETWORKS), ("method", COST)):
        unknown = [n for n in getattr(args, name + "s").split(",") if n not in known]
        if unknown:
            parser.error(f"unknown {name} {unknown[0]!r}; choose from: {', '.join(known)}")
    torch.set_num_threads(1)
    print(f"{'network':<16} {'method':<22} {'maps/s':>9} {'bound':>9} {'ratio':>6} {'loop':>9}")
    for network in args.networks.split(","):
        torch.manual_seed(0)
        model = ActorCritic(network, 4).eval()
        for method in args.methods.split(","):
            passes, backward, n_obs, batch = COST[method]
            if method == "attention" and isinstance(model.extractor, PlainCNN):
                print(f"{network:<16} {method:<22} (no attention of its own: an all-zero map, not measured)")
                continue
            obs = torch.randint(0, 256, (n_obs, 4, 84, 84), dtype=torch.uint8)
            actions = greedy_actions(model(obs)[0])
            method_s, batch_s, single_s = cpu_seconds(
                [lambda: METHODS[method](model, obs, actions), network_pass(model, batch, backward),
                 network_pass(model, 1, backward)], args.repeats)
            maps_per_s, bound, loop = n_obs / method_s, batch / batch_s / passes, 1 / single_s / passes
            print(f"{network:<16} {method:<22} {maps_per_s:9.2f} {bound:9.2f} {maps_per_s / bound:6.2f} {loop:9.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
