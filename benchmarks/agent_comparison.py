"""Four agents, trained here for the same number of agent steps, scored on one Atari-HEAD-format Breakout trial.

The agents: this project's ``cnn_sparse_fls`` (``fl-saliency train``), Stable-Baselines3's PPO and DQN
(``CnnPolicy`` on SB3's own ``make_atari_env`` + ``VecFrameStack(4)``, saved with ``model.save()``) and CleanRL's
PPO: CleanRL's own ``cleanrl/ppo_atari.py``, run unchanged from a clone of vwxyzjn/cleanrl with the Python that
``--cleanrl-python`` names (CleanRL pins gymnasium 0.29, older than this project's), its ``agent`` then saved with
``torch.save(agent.state_dict(), path)``. Without ``--cleanrl-dir`` the CleanRL agent is left out.

Then one generated trial (``fl-saliency make-sample-trial``: real emulator frames, SYNTHETIC gaze), every method
each agent can give scored on it with ``fl-saliency saliency`` (and the references once), each agent's mean score
over a few evaluation games (``fl-saliency evaluate``), and one Markdown table. Every command is printed as it
runs; a stage whose output exists is not run again (delete the folder to start over).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/agent_comparison.py --out OUT [--steps 20480] [--frames 300]
        [--cleanrl-dir CLEANRL_CLONE --cleanrl-python /tmp/cleanrl-venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ENV = "BreakoutNoFrameskip-v4"
CLEANRL_BATCH = 8 * 128  # ppo_atari's num_envs x num_steps: it runs total_timesteps // this whole iterations
POST_HOC = ["gradient", "smoothgrad", "integrated-gradients", "perturbation", "rise", "gradcam"]
REFERENCES = "uniform,center-bias,gaze-neighbour"
COLUMNS = [("NSS", "nss"), ("sAUC", "sauc"), ("CC", "cc"), ("KL", "kldiv"), ("AUC-Judd", "auc_judd")]

# Run by --cleanrl-python with the clone on its path: CleanRL's script as it is, then its agent's weights.
CLEANRL_RUNNER = """
import runpy, sys
import gymnasium, torch
if "BreakoutNoFrameskip-v4" not in gymnasium.registry:
    from ale_py.registration import register_v0_v4_envs
    register_v0_v4_envs()
script, out = sys.argv[1], sys.argv[2]
sys.argv = [script] + sys.argv[3:]
torch.save(runpy.run_path(script, run_name="__main__")["agent"].state_dict(), out)
"""


def run(cmd: list[str], **kwargs) -> None:
    print("$", shlex.join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "fl_saliency.cli", *args]


def train_sb3(algo: str, path: Path, steps: int, seed: int) -> None:
    """SB3's PPO with Baselines' Atari settings (8 envs x 128 steps, as the other two PPOs), or its DQN with a
    small replay buffer; both on SB3's own Atari chain."""
    import ale_py
    import gymnasium
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gymnasium.register_envs(ale_py)
    if algo == "ppo":
        env = VecFrameStack(make_atari_env(ENV, n_envs=8, seed=seed), n_stack=4)
        model = PPO("CnnPolicy", env, n_steps=128, batch_size=256, n_epochs=4, learning_rate=2.5e-4, clip_range=0.1,
                    ent_coef=0.01, vf_coef=0.5, seed=seed, device="cpu", verbose=0)
    else:
        env = VecFrameStack(make_atari_env(ENV, n_envs=1, seed=seed), n_stack=4)
        model = DQN("CnnPolicy", env, buffer_size=10_000, learning_starts=1_000, train_freq=4,
                    target_update_interval=1_000, exploration_fraction=0.5, seed=seed, device="cpu", verbose=0)
    print(f"# Stable-Baselines3 {algo.upper()} CnnPolicy, {steps} steps -> {path}", flush=True)
    model.learn(steps)
    model.save(path)
    env.close()


def agents(args) -> dict[str, tuple[Path, list[str]]]:
    """name: (the file or folder --agent takes, the methods it can give)."""
    out = args.out / "agents"
    found = {"cnn_sparse_fls": (out / "cnn_sparse_fls", ["attention", *POST_HOC]),
             "SB3 PPO": (out / "sb3_ppo.zip", POST_HOC),
             "SB3 DQN": (out / "sb3_dqn.zip", POST_HOC)}
    if args.cleanrl_dir:
        found["CleanRL PPO"] = (out / "cleanrl_ppo_atari.pt", POST_HOC)
    return found


def train(args, name: str, path: Path) -> float:
    start = time.time()
    if name == "cnn_sparse_fls":
        run(cli("train", "--network", "cnn_sparse_fls", "--env-name", ENV, "--num-timesteps", args.steps,
                "--train-seed", args.seed, "--output-dir", path))
    elif name.startswith("SB3"):
        train_sb3(name.split()[1].lower(), path, args.steps, args.seed)
    else:
        work = path.parent / "cleanrl_work"  # its runs/ (TensorBoard) folder
        work.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(args.cleanrl_dir.resolve())}
        run([args.cleanrl_python, "-c", CLEANRL_RUNNER, args.cleanrl_dir.resolve() / "cleanrl" / "ppo_atari.py",
             path.resolve(), "--env-id", ENV, "--total-timesteps", args.steps, "--seed", args.seed],
            cwd=work, env=env, stdout=subprocess.DEVNULL)
    return time.time() - start


def agent_flags(path: Path) -> list:
    return ["--agent", path] + ([] if path.is_dir() else ["--env-name", ENV])


def cell(stats: dict) -> str:
    if stats["mean"] is None:
        return "—"
    return f"{stats['mean']:.3f} [{stats['ci_low']:.3f}, {stats['ci_high']:.3f}]"


def table(rows: list[tuple[str, str, dict, str]]) -> str:
    head = "| agent | method | " + " | ".join(c for c, _ in COLUMNS) + " | eval score |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 3)]
    for agent, method, overall, score in rows:
        lines.append(f"| {agent} | {method} | " + " | ".join(cell(overall[k]) for _, k in COLUMNS) + f" | {score} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the agents, the trial and the scores")
    parser.add_argument("--steps", type=int, default=20_480,
                        help="agent steps each agent trains for (a multiple of 1024, ppo_atari's batch)")
    parser.add_argument("--frames", type=int, default=300, help="frames in the generated trial")
    parser.add_argument("--seed", type=int, default=0, help="training seed of every agent and the trial's seed")
    parser.add_argument("--eval-games", type=int, default=4, help="evaluation games per agent (0: none)")
    parser.add_argument("--max-eplen", type=int, default=5_000, help="agent steps after which a game is cut")
    parser.add_argument("--cleanrl-dir", type=Path, help="a clone of vwxyzjn/cleanrl (its cleanrl/ppo_atari.py)")
    parser.add_argument("--cleanrl-python", default=sys.executable,
                        help="a Python with CleanRL's requirements (gymnasium 0.29, ale-py, tyro, tensorboard)")
    args = parser.parse_args()
    if args.steps % CLEANRL_BATCH:
        parser.error(f"--steps must be a multiple of {CLEANRL_BATCH}: ppo_atari runs whole iterations of that many")
    if args.cleanrl_dir and not (args.cleanrl_dir / "cleanrl" / "ppo_atari.py").is_file():
        parser.error(f"{args.cleanrl_dir} has no cleanrl/ppo_atari.py: pass a clone of vwxyzjn/cleanrl")
    if args.cleanrl_dir:
        print(f"# CleanRL PPO: CleanRL's own {args.cleanrl_dir / 'cleanrl' / 'ppo_atari.py'}, unchanged, run by "
              f"{args.cleanrl_python}; its agent saved with torch.save(agent.state_dict(), path)", flush=True)
    else:
        print("# no --cleanrl-dir: CleanRL's PPO is left out", flush=True)

    head = args.out / "atari_head"
    if not head.exists():
        run(cli("make-sample-trial", "--game", "Breakout", "--frames", args.frames, "--seed", args.seed,
                "--out", head))
    seconds, rows, references = {}, [], None
    for name, (path, methods) in agents(args).items():
        if not (path / "model.pkl" if name == "cnn_sparse_fls" else path).exists():
            seconds[name] = train(args, name, path)
        slug = path.name.split(".")[0]
        scores = args.out / "scores" / slug
        if not (scores / "saliency.json").exists():
            run(cli("saliency", *agent_flags(path), "--atari-head-dir", head, "--output-dir", scores,
                    "--method", ",".join(methods), *(["--references", REFERENCES] if references is None else [])))
        summary = json.loads((scores / "saliency.json").read_text())
        references = references or summary["references"]
        score = "—"
        if args.eval_games:
            evaluation = args.out / "eval" / slug
            if not (evaluation / "summary.json").exists():
                run(cli("evaluate", *agent_flags(path), "--output-dir", evaluation, "--num-env", args.eval_games,
                        "--evals-per-env", 1, "--max-eplen", args.max_eplen))
            r = json.loads((evaluation / "summary.json").read_text())["rewards"]
            score = f"{r['mean']:.1f} ({r['n']} game{'s' * (r['n'] != 1)})"
        maps = summary["methods"][methods[0]]["overall"]["nss"]["count"]
        rows += [(name, method, summary["methods"][method]["overall"], score if i == 0 else "")
                 for i, method in enumerate(methods)]
    rows += [("reference", name, summary["overall"], "—") for name, summary in references.items()]
    text = table(rows)
    (args.out / "comparison.md").write_text(text + "\n")
    print(f"\n{args.steps} agent steps each, seed {args.seed}; a trial of {args.frames} frames with synthetic gaze, "
          f"{maps} maps scored per method; mean over the maps [95% bootstrap CI]")
    for name, s in seconds.items():
        print(f"# trained {name} in {s:.0f} s")
    print(text)


if __name__ == "__main__":
    main()
