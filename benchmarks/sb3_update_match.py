"""Is our PPO update Stable-Baselines3's, given the same loss? One update, side by side.

Our PPO rolls out ``cnn`` on Breakout (8 x 128 steps); SB3's PPO (CnnPolicy) gets the same
initial weights, the same rollout in its buffer and the same minibatch order, and both make one
update (4 epochs x 4 minibatches). Printed: how far SB3's weights end from ours, relative to how
far ours moved, and how far ours moved relative to SB3's; for our PPO2 (the default) and with
its Baselines choices switched to SB3's: the value loss (``--vf-coef 1.0 --no-value-clip``) and
PyTorch's Adam eps placement. Where all agree the weights should agree up to float32 rounding
and SB3's unbiased advantage std. Also: our GAE against SB3's on random data.

    .venv/bin/pip install -e ".[bench]" && .venv/bin/python benchmarks/sb3_update_match.py
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from unittest import mock

import numpy as np
import torch

from fl_saliency.envs import make_pipelined_vec_env
from fl_saliency.agents.networks import ActorCritic
from fl_saliency.ppo.algorithm import PPO, PPOConfig, Rollout, compute_gae

ENV = "BreakoutNoFrameskip-v4"
SB3_NAMES = {  # SB3 CnnPolicy parameter: ours
    "features_extractor.cnn.0": "extractor.features.c1",
    "features_extractor.cnn.2": "extractor.features.c2",
    "features_extractor.cnn.4": "extractor.features.c3",
    "features_extractor.linear.0": "extractor.fc1",
    "action_net": "pi",
    "value_net": "vf",
}
# Our fc1 takes the conv output flattened as (h, w, c), TensorFlow's order; SB3 flattens (c, h, w).
FC1_ROWS = torch.arange(64 * 7 * 7).reshape(7, 7, 64).permute(2, 0, 1).flatten()  # SB3 input j is our row FC1_ROWS[j]


def as_sb3(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our Dense weights are (in, out), nn.Linear's (out, in)."""
    out = {}
    for sb3, name in SB3_NAMES.items():
        weight = ours[f"{name}.weight"]
        if weight.dim() == 2:
            weight = (weight[FC1_ROWS] if name == "extractor.fc1" else weight).t()
        out[f"{sb3}.weight"] = weight
        out[f"{sb3}.bias"] = ours[f"{name}.bias"]
    return out


def from_sb3(sb3: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for name, ours in SB3_NAMES.items():
        weight = sb3[f"{name}.weight"]
        if weight.dim() == 2:
            weight = weight.t()
            if ours == "extractor.fc1":
                weight = weight[torch.argsort(FC1_ROWS)]
        out[f"{ours}.weight"] = weight
        out[f"{ours}.bias"] = sb3[f"{name}.bias"]
    return out


def sb3_update(sb3, initial: dict[str, torch.Tensor], rollout: Rollout, orders: list[np.ndarray], lr: float):
    """SB3's weights after its train() on ``rollout`` from ``initial``, minibatches in ``orders`` (our indices)."""
    policy = sb3.policy
    policy.load_state_dict({**policy.state_dict(), **as_sb3(initial)})
    policy.optimizer = policy.optimizer_class(policy.parameters(), lr=lr, **policy.optimizer_kwargs)
    sb3.lr_schedule = lambda _: lr
    buffer = sb3.rollout_buffer
    buffer.reset()
    nsteps, num_envs = rollout.actions.shape
    buffer.observations[:] = rollout.obs
    buffer.actions[:] = rollout.actions[..., None]
    buffer.values[:], buffer.log_probs[:] = rollout.values, -rollout.neglogps
    buffer.returns[:], buffer.advantages[:] = rollout.returns, rollout.returns - rollout.values
    buffer.full = True
    # Our index t * N + n is SB3's n * T + t (its buffer is flattened env-major).
    sb3_orders = iter([(order % num_envs) * nsteps + order // num_envs for order in orders])
    with mock.patch("numpy.random.permutation", lambda n: next(sb3_orders)):
        sb3.train()
    return from_sb3(policy.state_dict())


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return float(torch.sqrt(sum(((a[k] - b[k]).double() ** 2).sum() for k in a)))


def gae_difference(sb3, config: PPOConfig, seed: int) -> float:
    """Largest |our GAE - SB3's| on random rewards, values and episode starts of a rollout's shape."""
    rng = np.random.default_rng(seed)
    shape = (config.nsteps, config.num_envs)
    rewards, values = rng.normal(size=shape).astype(np.float32), rng.normal(size=shape).astype(np.float32)
    starts = (rng.random(shape) < 0.05).astype(np.float32)
    last_values, last_dones = rng.normal(size=config.num_envs).astype(np.float32), rng.random(config.num_envs) < 0.05
    ours = compute_gae(rewards, values, starts, last_values, last_dones.astype(np.float32), config.gamma, config.lam)
    buffer = sb3.rollout_buffer
    buffer.reset()
    buffer.rewards[:], buffer.values[:], buffer.episode_starts[:] = rewards, values, starts
    buffer.compute_returns_and_advantage(torch.from_numpy(last_values), last_dones)
    return float(np.abs(ours - buffer.advantages).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2.5e-4)
    args = parser.parse_args()
    from sb3_setup import make_sb3_ppo
    from stable_baselines3.common.logger import configure

    torch.manual_seed(args.seed)
    config = PPOConfig()
    model = ActorCritic("cnn", 4)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    envs = make_pipelined_vec_env(ENV, config.num_envs, args.seed)
    rollout, _, _ = PPO(model, config, args.seed, torch.device("cpu")).rollout(
        envs, envs.reset(), np.zeros(config.num_envs, bool))
    envs.close()
    sb3 = make_sb3_ppo(ENV, config, args.seed)
    sb3.set_logger(configure(None, []))
    print(f"GAE advantages, 8 x 128 random steps: largest |ours - SB3| {gae_difference(sb3, config, args.seed):.1e}")
    print(f"one update of {config.noptepochs} epochs x {config.nminibatches} minibatches of {config.minibatch_size}, "
          f"cnn, {ENV}, lr {args.lr}, same start, rollout and minibatches (returns {rollout.returns.min():.2f} "
          f"to {rollout.returns.max():.2f}):")
    print(f"{'ours':58} {'|ours - SB3| / |ours - start|':>30} {'|ours - start| / |SB3 - start|':>31}")
    sb3_loss = {"vf_coef": 1.0, "value_clip": False}
    variants = [
        ("PPO2 (default): clipped value loss, TensorFlow's Adam eps", {}),
        ("--vf-coef 1.0 --no-value-clip", sb3_loss),
        ("--adam-eps-placement pytorch", {"adam_eps_placement": "pytorch"}),
        ("--vf-coef 1.0 --no-value-clip --adam-eps-placement pytorch", {**sb3_loss, "adam_eps_placement": "pytorch"}),
    ]
    for title, changes in variants:
        variant = replace(config, **changes)
        model.load_state_dict(initial)
        learner = PPO(model, variant, args.seed, torch.device("cpu"))
        shuffler = np.random.default_rng()
        shuffler.bit_generator.state = learner.rng.bit_generator.state  # the orders the update will draw
        orders = [shuffler.permutation(variant.batch_size) for _ in range(variant.noptepochs)]
        learner.update(rollout, args.lr)
        ours = {k: v.detach().clone() for k, v in model.state_dict().items()}
        theirs = sb3_update(sb3, initial, rollout, orders, args.lr)
        print(f"{title:58} {distance(ours, theirs) / distance(ours, initial):30.2e} "
              f"{distance(ours, initial) / distance(theirs, initial):31.2f}")
    print("(the last row is left with float32 rounding and SB3's unbiased advantage std, a factor 256/255 in variance)")
    sb3.get_env().close()


if __name__ == "__main__":
    main()
