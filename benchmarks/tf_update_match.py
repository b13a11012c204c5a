"""Is our PPO update the original's? One update of ours against the fork's TensorFlow ``Model.train``.

The original's PPO2 ``Model`` (run by original_tf.py) and ours start from the same weights (the
original's initialisation, loaded into ours), take the same rollout (8 x 128 observations with
structure at several scales, actions, values and -log p from the original's own policy, returns =
values + Gaussian advantages) in the same minibatch order, and make one update with the default
settings (4 epochs x 4 minibatches of 256, lr 2.5e-4, clip 0.1, Baselines' value loss and Adam eps).
Printed per variable and overall: how far ours and the original's moved, and the largest
difference between them relative to the original's move. Then a second update from the state we
saved: the original loads our ``model.pkl`` (weights and Adam state) with its strict ``Model.load``
and both update again, which checks the Adam state mapping in the original's own optimizer.

    PYTHONPATH=. /work/tfenv/bin/python benchmarks/tf_update_match.py --fls FLS_CHECKOUT --baselines BASELINES_CHECKOUT
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from original_tf import Original, fixed_batch, import_original

from fl_saliency.agents.checkpoint import load_into, save_model, to_baselines
from fl_saliency.agents.networks import ActorCritic
from fl_saliency.ppo.algorithm import PPO, PPOConfig, Rollout, clip_by_global_norm, ppo_loss


def make_rollout(original: Original, config: PPOConfig, seed: int) -> Rollout:
    rng = np.random.default_rng(seed)
    obs = fixed_batch(config.batch_size, seed)  # flat index t * num_envs + n, as our Rollout flattens
    actions, values, _, neglogps, _ = original.model.step(obs)
    returns = values + rng.normal(size=config.batch_size).astype(np.float32)
    shape = (config.nsteps, config.num_envs)
    return Rollout(obs=obs.transpose(0, 3, 1, 2).reshape(*shape, 4, 84, 84), actions=actions.reshape(shape),
                   values=values.reshape(shape), neglogps=neglogps.reshape(shape), returns=returns.reshape(shape),
                   episodes=[])


def original_update(original: Original, rollout: Rollout, orders: list[np.ndarray], config: PPOConfig, lr: float):
    flat = lambda a: a.reshape(config.batch_size, *a.shape[2:])
    obs = flat(rollout.obs).transpose(0, 2, 3, 1)
    returns, actions, values, neglogps = map(flat, (rollout.returns, rollout.actions, rollout.values, rollout.neglogps))
    masks = np.zeros(config.batch_size, bool)
    for order in orders:
        for start in range(0, config.batch_size, config.minibatch_size):
            idx = order[start : start + config.minibatch_size]
            original.model.train(lr, config.cliprange, obs[idx], returns[idx], masks[idx], actions[idx], values[idx],
                                 neglogps[idx])


def next_orders(learner: PPO) -> list[np.ndarray]:
    """The minibatch orders the learner's next update will draw."""
    shuffler = np.random.default_rng()
    shuffler.bit_generator.state = learner.rng.bit_generator.state
    return [shuffler.permutation(learner.config.batch_size) for _ in range(learner.config.noptepochs)]


def first_step_gradients(original: Original, learner: PPO, rollout: Rollout, idx: np.ndarray) -> None:
    """The clipped gradients of the first minibatch, ours against the original's ``Model.grads``."""
    c, m = learner.config, original.model
    flat = lambda a: a.reshape(c.batch_size, *a.shape[2:])[idx]
    obs, actions, values, neglogps, returns = map(
        flat, (rollout.obs, rollout.actions, rollout.values, rollout.neglogps, rollout.returns))
    advantages = returns - values
    feed = {m.train_model.X: obs.transpose(0, 2, 3, 1), m.A: actions, m.R: returns, m.LR: c.lr,
            m.ADV: (advantages - advantages.mean()) / (advantages.std() + 1e-8), m.CLIPRANGE: c.cliprange,
            m.OLDNEGLOGPAC: neglogps, m.OLDVPRED: values}
    theirs = dict(zip((v.name for v in m.var), original.sess.run(list(m.grads), feed)))
    learner.model.zero_grad()
    logits, new_values, _ = learner.model(torch.from_numpy(obs))
    t = torch.from_numpy
    loss, _ = ppo_loss(logits, new_values, t(actions), t(neglogps), t(values), t(returns), c.cliprange, c.ent_coef,
                       c.vf_coef)
    loss.backward()
    clip_by_global_norm(learner.model.parameters(), c.max_grad_norm)
    ours = to_baselines_gradients(learner.model)
    learner.model.zero_grad()
    differences = {name: float(np.abs(ours[name] - g).max() / np.abs(g).max()) for name, g in theirs.items()}
    print("first minibatch, clipped gradients, max |ours - original| / max |original| per variable: "
          + ", ".join(f"{name.removeprefix('ppo2_model/pi/').removeprefix('ppo2_model/')} {d:.1e}"
                      for name, d in differences.items()))


def to_baselines_gradients(model: ActorCritic) -> dict[str, np.ndarray]:
    gradients = ActorCritic(model.network, model.n_actions, initialise=False)
    with torch.no_grad():
        for mine, p in zip(gradients.parameters(), model.parameters()):
            mine.copy_(p.grad)
    return to_baselines(gradients)


def float64_update(start: dict, network: str, rollout: Rollout, config: PPOConfig, seed: int, adam=None) -> dict:
    """Our update in float64 from the same state: how far float32 rounding alone moves the result."""
    model = ActorCritic(network, 4, initialise=False)
    load_into(model, start)
    model.double()
    learner = PPO(model, config, seed=seed, device=torch.device("cpu"))
    if adam is not None:
        learner.load_adam_state(adam)
    with mock.patch("fl_saliency.ppo.algorithm.scale_observation", lambda obs: obs.double() / 255.0):
        learner.update(rollout, config.lr)
    return to_baselines(model)


def compare(title: str, start: dict, ours: dict, theirs: dict, ours64: dict) -> float:
    """Per variable: how far each moved; max |ours - original| and max |ours - ours in float64|, both relative
    to max |original - start|, the second being the float32 rounding floor."""
    print(title)
    print(f"  {'variable':14} {'|ours - start|':>15} {'|orig - start|':>15} {'ours vs orig':>13} {'ours vs fp64':>13}")
    relative = lambda a, b, name: float(np.abs(a[name] - b[name]).max() / np.abs(theirs[name] - start[name]).max())
    norm = lambda a, b, name: float(np.linalg.norm((a[name] - b[name]).astype(np.float64)))
    worst = 0.0
    for name in start:
        worst = max(worst, relative(ours, theirs, name))
        print(f"  {name.removeprefix('ppo2_model/pi/').removeprefix('ppo2_model/'):14} {norm(ours, start, name):15.4e} "
              f"{norm(theirs, start, name):15.4e} {relative(ours, theirs, name):13.2e} {relative(ours, ours64, name):13.2e}")
    total = lambda a, b: np.sqrt(sum(norm(a, b, k) ** 2 for k in start))
    print(f"  all: |ours - start| {total(ours, start):.4e}, |orig - start| {total(theirs, start):.4e}; "
          f"|ours - orig| / |orig - start| {total(ours, theirs) / total(theirs, start):.2e}, "
          f"|ours - fp64| / |orig - start| {total(ours, ours64) / total(theirs, start):.2e}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fls", type=Path, required=True, help="checkout of dniku/free-lunch-saliency")
    parser.add_argument("--baselines", type=Path, required=True, help="checkout of dniku/baselines at 0b217d2")
    parser.add_argument("--network", default="cnn_sparse_fls")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    modules = import_original(args.fls, args.baselines)
    config = PPOConfig()
    weights = lambda variables: {k: v for k, v in variables.items() if k.startswith("ppo2_model/") and "/Adam" not in k}

    original = Original(modules, args.network, nbatch_train=config.minibatch_size, seed=args.seed)
    start = weights(original.variables())
    model = ActorCritic(args.network, 4, initialise=False)
    load_into(model, start)
    learner = PPO(model, config, seed=args.seed, device=torch.device("cpu"))
    rollout = make_rollout(original, config, args.seed)
    ours64 = float64_update(start, args.network, rollout, config, args.seed)
    print(f"{args.network}, Breakout's 4 actions, one update of {config.noptepochs} epochs x {config.nminibatches} "
          f"minibatches of {config.minibatch_size}, lr {config.lr}, same start, rollout and minibatch order. "
          f"Columns 3-4: largest difference relative to the original's largest move")
    orders = next_orders(learner)
    first_step_gradients(original, learner, rollout, orders[0][: config.minibatch_size])
    learner.update(rollout, config.lr)
    original_update(original, rollout, orders, config, config.lr)
    worst = compare("update 1, both from the original's initial weights:", start, to_baselines(model),
                    weights(original.variables()), ours64)
    original.close()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pkl"
        adam = learner.adam_state()
        save_model(model, path, adam)
        original = Original(modules, args.network, nbatch_train=config.minibatch_size, seed=args.seed)
        original.model.load(str(path))
    start = to_baselines(model)
    ours64 = float64_update(start, args.network, rollout, config, args.seed + 1, adam)
    learner.rng = np.random.default_rng(args.seed + 1)
    orders = next_orders(learner)
    learner.update(rollout, config.lr)
    original_update(original, rollout, orders, config, config.lr)
    worst = max(worst, compare("update 2, the original from our model.pkl (weights and Adam state after 16 steps):",
                               start, to_baselines(model), weights(original.variables()), ours64))
    original.close()
    print(f"largest per-variable difference over both updates: {worst:.2e} of the original's largest move")


if __name__ == "__main__":
    main()
