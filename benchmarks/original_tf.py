"""The paper's own TensorFlow code, run here: it writes the fixtures of tests/fixtures/original and loads our files.

The original trains with a fork of OpenAI Baselines (github:dniku/baselines at 0b217d2, the
commit its Dockerfile installs) and its networks in ``models_baselines.py``
(github:dniku/free-lunch-saliency). Both are TF1 code; they run unchanged under TensorFlow 2's
``tensorflow.compat.v1`` with these adaptations, made in memory at import time: ``import tensorflow
as tf`` reads ``import tensorflow.compat.v1 as tf``, ``tensorflow.contrib.layers`` is None (used only
by networks not in the paper), ``baselines/common/__init__.py``'s star-imports are dropped, ``gym``
is a stub whose spaces serve the isinstance checks, and without mpi4py the optimizer is
``tf.train.AdamOptimizer(epsilon=1e-5)``, the branch the original Docker image takes.

Modes (in a separate environment, outside the repository's)::

    python3 -m venv /work/tfenv && /work/tfenv/bin/pip install tensorflow==2.21.0 tf-keras==2.21.0 \\
        joblib==1.6.0 torch==2.13.0 ale-py==0.12.1
    FORK="--fls /path/free-lunch-saliency --baselines /path/baselines"   # the two checkouts
    PYTHONPATH=. /work/tfenv/bin/python benchmarks/original_tf.py $FORK fixtures tests/fixtures/original
    PYTHONPATH=. /work/tfenv/bin/python benchmarks/original_tf.py $FORK load-ours EXPERIMENT_DIR [...]

``fixtures``: for ``cnn_daqn`` and ``cnn_sparse_fls_pool`` on Breakout, one training step of the
original's PPO2 ``Model.train``, then its own ``Model.save`` (``<network>/model.pkl`` + a
``config.json``) and its logits, value and attention for a fixed batch (``<network>/outputs.npz``).
``load-ours``: the original's strict ``Model.load`` reads an experiment folder written by
fl-saliency; its logits, value and attention are compared with ours.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
from pathlib import Path

import numpy as np

NETWORKS = ("cnn_daqn", "cnn_sparse_fls_pool")
ENV_NAME = "BreakoutNoFrameskip-v4"
N_ACTIONS = 4
OBS_SHAPE = (84, 84, 4)
FORK_MODULES = (  # loaded in this order: each imports only those before it
    "baselines.common.tf_util",
    "baselines.a2c.utils",
    "baselines.common.mpi_running_mean_std",
    "baselines.common.distributions",
    "baselines.common.input",
    "baselines.common.models",
    "baselines.common.policies",
    "baselines.ppo2.model",
)
REWRITES = (
    ("import tensorflow.contrib.layers as layers", "layers = None"),
    ("import tensorflow as tf", "import tensorflow.compat.v1 as tf"),
)


def _gym_stub() -> types.ModuleType:
    class Space:
        def __init__(self, shape=(), dtype=np.int64):
            self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    class Discrete(Space):
        def __init__(self, n):
            super().__init__()
            self.n = n

    class Box(Space):
        pass

    class MultiDiscrete(Space):
        pass

    class MultiBinary(Space):
        pass

    spaces = types.ModuleType("gym.spaces")
    for cls in (Space, Discrete, Box, MultiDiscrete, MultiBinary):
        setattr(spaces, cls.__name__, cls)
    gym = types.ModuleType("gym")
    gym.spaces = spaces
    return gym


def _load_source(name: str, path: Path) -> types.ModuleType:
    source = path.read_text()
    for old, new in REWRITES:
        source = source.replace(old, new)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def import_original(fls_dir: Path, baselines_dir: Path):
    """The fork's TF1 modules under TensorFlow 2; returns (tf, policies, ppo2 model, models_baselines)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TF's oneDNN kernels (on by default since TF 2.9, not in the TF 1 builds the original ran) sum in
    # an order that leaves conv gradients ~1e-3 off in float32; the plain Eigen kernels agree with ours to ~1e-6.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow.compat.v1 as tf

    tf.disable_v2_behavior()
    gym = _gym_stub()
    sys.modules.update({"gym": gym, "gym.spaces": gym.spaces})
    for package in ("baselines", "baselines.a2c", "baselines.common", "baselines.ppo2"):
        module = types.ModuleType(package)
        module.__path__ = []  # nothing else of the fork gets imported behind our back
        sys.modules[package] = module
        parent, _, child = package.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
    for name in FORK_MODULES:
        module = _load_source(name, baselines_dir / (name.replace(".", "/") + ".py"))
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)
    models_baselines = _load_source("models_baselines", fls_dir / "models_baselines.py")
    return tf, sys.modules["baselines.common.policies"], sys.modules["baselines.ppo2.model"], models_baselines


class Original:
    """The fork's PPO2 Model for one network on a Breakout-shaped game, in a fresh graph."""

    def __init__(self, modules, network: str, nbatch_train: int, seed: int = 0):
        tf, policies, ppo2_model, _ = modules
        self.tf = tf
        gym = sys.modules["gym"]
        env = types.SimpleNamespace(observation_space=gym.spaces.Box(OBS_SHAPE, np.uint8),
                                    action_space=gym.spaces.Discrete(N_ACTIONS))
        tf.reset_default_graph()
        tf.set_random_seed(seed)
        self.graph = tf.get_default_graph()
        sess = tf.Session(config=tf.ConfigProto(intra_op_parallelism_threads=2, inter_op_parallelism_threads=1))
        sess.__enter__()  # get_session() picks up the default session
        policy = policies.build_policy(env, network)
        self.model = ppo2_model.Model(policy=policy, ob_space=env.observation_space, ac_space=env.action_space,
                                      nbatch_act=None, nbatch_train=nbatch_train, nsteps=1, ent_coef=0.01,
                                      vf_coef=0.5, max_grad_norm=0.5)
        self.sess = sess

    def outputs(self, obs_nhwc: np.ndarray) -> dict[str, np.ndarray]:
        act = self.model.act_model
        logits, value, attention = self.sess.run([act.pi, act.vf, act.extra], {act.X: obs_nhwc})
        return {"logits": logits, "value": value, "attention": attention}

    def variables(self) -> dict[str, np.ndarray]:
        variables = self.tf.global_variables()
        return dict(zip((v.name for v in variables), self.sess.run(variables)))

    def close(self) -> None:
        self.sess.__exit__(None, None, None)
        self.sess.close()


def fixed_batch(n: int = 8, seed: int = 0) -> np.ndarray:
    """Observations (n, 84, 84, 4) uint8 with structure at several scales, so attention varies."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, 11, 11, 4)).repeat(8, axis=1).repeat(8, axis=2)[:, :84, :84]
    fine = rng.integers(-40, 41, (n, *OBS_SHAPE))
    return np.clip(coarse + fine, 0, 255).astype(np.uint8)


def one_training_step(original: Original, nbatch: int, seed: int = 1) -> None:
    """One minibatch step of the original's Model.train on a rollout its own act_model samples."""
    rng = np.random.default_rng(seed)
    obs = fixed_batch(nbatch, seed)
    actions, values, _, neglogps, _ = original.model.step(obs)
    returns = values + rng.normal(size=nbatch).astype(np.float32)
    original.model.train(2.5e-4, 0.1, obs, returns, np.zeros(nbatch, bool), actions, values, neglogps)


def write_fixtures(modules, out: Path) -> None:
    for network in NETWORKS:
        folder = out / network
        folder.mkdir(parents=True, exist_ok=True)
        original = Original(modules, network, nbatch_train=16)
        one_training_step(original, 16)
        original.model.save(str(folder / "model.pkl"))
        (folder / "config.json").write_text(json.dumps({"network": network, "env_name": ENV_NAME}, indent=2) + "\n")
        obs = fixed_batch()
        np.savez(folder / "outputs.npz", obs=obs, **original.outputs(obs))
        saved = original.variables()
        print(f"{network}: {len(saved)} variables, beta1_power {saved['beta1_power:0']!r}, "
              f"{(folder / 'model.pkl').stat().st_size / 1e6:.1f} MB -> {folder}")
        original.close()


def load_ours(modules, experiment_dir: Path) -> float:
    """The original's strict load of our model.pkl; the largest |ours - original's| over logits, value, attention."""
    import torch

    from fl_saliency.agents.checkpoint import load_model

    model, experiment = load_model(experiment_dir)
    original = Original(modules, experiment.network, nbatch_train=16)
    original.model.load(str(experiment_dir / "model.pkl"))  # tf_util.load_variables: every global variable
    obs = fixed_batch()
    theirs = original.outputs(obs)
    with torch.no_grad():
        logits, value, attention = model(torch.from_numpy(obs.transpose(0, 3, 1, 2).copy()))
    ours = {"logits": logits.numpy(), "value": value.numpy(), "attention": attention.numpy()}
    worst = 0.0
    print(f"{experiment_dir} ({experiment.network}) loaded by the original's Model.load "
          f"({len(original.variables())} variables):")
    for key in ours:
        difference = float(np.abs(ours[key] - theirs[key].reshape(ours[key].shape)).max())
        scale = float(np.abs(theirs[key]).max())
        print(f"  {key:9} largest |ours - original| {difference:.2e} (largest |original| {scale:.2e})")
        worst = max(worst, difference)
    original.close()
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fls", type=Path, required=True, help="checkout of dniku/free-lunch-saliency")
    parser.add_argument("--baselines", type=Path, required=True, help="checkout of dniku/baselines at 0b217d2")
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("fixtures").add_argument("out", type=Path)
    ours = sub.add_parser("load-ours")
    ours.add_argument("experiment_dirs", type=Path, nargs="+")
    ours.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args(argv)
    modules = import_original(args.fls, args.baselines)
    if args.mode == "fixtures":
        write_fixtures(modules, args.out)
        return 0
    worst = max(load_ours(modules, folder) for folder in args.experiment_dirs)
    print(f"largest difference {worst:.2e}: {'within' if worst <= args.tolerance else 'ABOVE'} {args.tolerance:g}")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
