"""``fl-saliency``: argument parsing and one-line errors; the work happens in the package modules."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fl_saliency.errors import FlSaliencyError


def _networks(args: argparse.Namespace) -> None:
    from fl_saliency.games import num_actions
    from fl_saliency.networks import NETWORKS, ActorCritic, parameter_count

    n_actions = num_actions(args.env_name)
    rows = []
    for name in NETWORKS:
        model = ActorCritic(name, n_actions, initialise=False)
        grid = model.geometry.grid
        rows.append({"name": name, "params": parameter_count(model), "grid": f"{grid}x{grid}"})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{args.env_name}: {n_actions} actions")
    print(f"{'network':<28} {'params':>10}  attention grid")
    for row in rows:
        print(f"{row['name']:<28} {row['params']:>10,}  {row['grid']}")


def _inspect(args: argparse.Namespace) -> None:
    from fl_saliency import checkpoint
    from fl_saliency.games import num_actions
    from fl_saliency.networks import ActorCritic

    path = Path(args.path)
    model_path = path / checkpoint.MODEL_FILE if path.is_dir() else path
    config_path = model_path.parent / checkpoint.CONFIG_FILE
    params = checkpoint.load_params(model_path)
    experiment = checkpoint.load_config(config_path) if config_path.exists() else None
    n_actions = checkpoint.n_actions_of(params, str(model_path))

    print(f"checkpoint: {model_path}")
    print(f"network:    {experiment.network if experiment else '(no config.json)'}")
    print(f"game:       {experiment.env_name if experiment else '(no config.json)'}")
    print(f"actions:    {n_actions}")
    slots = [name for name in params if checkpoint.is_optimizer_slot(name)]
    for name, array in params.items():
        if not checkpoint.is_optimizer_slot(name):
            print(f"  {name:<40} {list(array.shape)}")
    if slots:
        print(f"  ({len(slots)} optimizer slots ignored)")

    if experiment is None:
        matches = checkpoint.matching_networks(params)
        print(f"matches:    {', '.join(matches) if matches else 'no known network'}")
        if not matches:
            raise checkpoint.CheckpointError(f"{model_path} matches none of the 15 networks")
        return
    game_actions = num_actions(experiment.env_name)
    if game_actions != n_actions:
        raise checkpoint.CheckpointError(f"{model_path} has {n_actions} actions but {experiment.env_name} has {game_actions}")
    checkpoint.check_params(params, ActorCritic(experiment.network, n_actions, initialise=False), str(model_path))
    print(f"matches:    yes, every parameter of {experiment.network} with the right shape")


def _train(args: argparse.Namespace) -> None:
    from fl_saliency.ppo import PPOConfig
    from fl_saliency.train import TrainSettings, train

    ppo = PPOConfig(num_envs=args.num_env, nsteps=args.nsteps, nminibatches=args.nminibatches,
                    noptepochs=args.noptepochs, lr=args.lr, cliprange=args.cliprange, value_clip=args.value_clip,
                    ent_coef=args.ent_coef, vf_coef=args.vf_coef, max_grad_norm=args.max_grad_norm, gamma=args.gamma,
                    lam=args.lam, adam_eps_placement=args.adam_eps_placement)
    settings = TrainSettings(
        output_dir=Path(args.output_dir), network=args.network, env_name=args.env_name, train_seed=args.train_seed,
        num_timesteps=args.num_timesteps, ppo=ppo, env_backend=args.env_backend, env_workers=args.env_workers,
        precision=args.precision, save_interval=args.save_interval,
        log_interval=args.log_interval, device=args.device, resume=args.resume, force=args.force,
    )
    model = train(settings)
    print(f"model saved to {model}")


def add_compute_arguments(parser: argparse.ArgumentParser) -> None:
    """How the work runs (not what it computes, up to --precision's rounding)."""
    from fl_saliency.ppo import PRECISIONS

    parser.add_argument("--env-workers", type=int, help="processes stepping the baselines backend's environments, "
                        "each a block of them (default: one per CPU core)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="bf16: mixed precision, ~2x faster on CPUs with AMX and on GPUs (the original is fp32)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The original train_baselines.py flags and defaults, plus the PPO2 settings and run control."""
    from fl_saliency.envs import BACKENDS
    from fl_saliency.ppo import EPS_PLACEMENTS, PPOConfig

    d = PPOConfig()
    parser.add_argument("--output-dir", required=True, help="run folder (logs/, tb/, model.pkl, config.json)")
    parser.add_argument("--network", default="cnn_sparse_fls", help="one of `fl-saliency networks`")
    parser.add_argument("--env-name", default="BreakoutNoFrameskip-v4", help="gym id or game name")
    parser.add_argument("--train-seed", type=int, default=1, help="env rank r is seeded train_seed + r")
    parser.add_argument("--num-timesteps", type=int, default=50_000_000, help="agent steps (4 emulator frames each)")
    parser.add_argument("--num-env", type=int, default=d.num_envs, help="parallel environments")
    parser.add_argument("--nsteps", type=int, default=d.nsteps, help="steps per environment per update")
    parser.add_argument("--nminibatches", type=int, default=d.nminibatches)
    parser.add_argument("--noptepochs", type=int, default=d.noptepochs)
    parser.add_argument("--lr", type=float, default=d.lr, help="initial learning rate, decays linearly to 0")
    parser.add_argument("--cliprange", type=float, default=d.cliprange)
    parser.add_argument("--value-clip", action=argparse.BooleanOptionalAction, default=d.value_clip,
                        help="clip the value change to --cliprange as Baselines does (--no-value-clip: as SB3's default)")
    parser.add_argument("--ent-coef", type=float, default=d.ent_coef)
    parser.add_argument("--vf-coef", type=float, default=d.vf_coef)
    parser.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm)
    parser.add_argument("--gamma", type=float, default=d.gamma)
    parser.add_argument("--lam", type=float, default=d.lam)
    parser.add_argument("--adam-eps-placement", choices=EPS_PLACEMENTS, default=d.adam_eps_placement,
                        help="tensorflow: eps before v's bias correction, as Baselines; pytorch: after it, as SB3")
    parser.add_argument("--env-backend", choices=BACKENDS, default="baselines",
                        help="baselines: the exact Python wrapper chain; ale-vector: ale-py's faster C++ vector env")
    add_compute_arguments(parser)
    parser.add_argument("--save-interval", type=int, default=50, help="updates between checkpoints")
    parser.add_argument("--log-interval", type=int, default=1, help="updates between log rows (the first and last are logged too)")
    run = parser.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true", help="continue the run in --output-dir from its checkpoint")
    run.add_argument("--force", action="store_true", help="delete the run in --output-dir and start over")


def _evaluate(args: argparse.Namespace) -> None:
    from fl_saliency.evaluate import EvalSettings, evaluate

    output_dir = Path(args.output_dir) if args.output_dir else Path(args.experiment_dir) / "eval"
    evaluate(EvalSettings(
        experiment_dir=Path(args.experiment_dir), output_dir=output_dir, num_env=args.num_env,
        evals_per_env=args.evals_per_env, eval_seed=args.eval_seed, max_eplen=args.max_eplen, raw_obs=args.raw_obs,
        processed_obs=args.processed_obs, video_format=args.video_format, video_env=args.video_env,
        deterministic=args.deterministic, env_backend=args.env_backend, env_workers=args.env_workers,
        precision=args.precision, device=args.device, progress=args.progress,
        force=args.force, breakout_infinite=args.breakout_infinite,
    ))


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """The original run_baselines.py flags and defaults, plus device, backend, video and policy options."""
    from fl_saliency.envs import BACKENDS
    from fl_saliency.video import CODECS

    parser.add_argument("--experiment-dir", required=True, help="folder with model.pkl and config.json (ours or the paper's)")
    parser.add_argument("--output-dir", help="where results.json (and perception.mkv) go; default EXPERIMENT_DIR/eval")
    parser.add_argument("--num-env", type=int, default=4, help="parallel environments (paper: 16)")
    parser.add_argument("--evals-per-env", type=int, default=1, help="full games counted per environment (paper: 512)")
    parser.add_argument("--eval-seed", type=int, default=1000, help="env rank r is seeded eval_seed + r")
    parser.add_argument("--max-eplen", type=int, default=108_000, help="truncate a game after this many steps")
    parser.add_argument("--raw-obs", action="store_true", help="video of the 210x160 screens with attention")
    parser.add_argument("--processed-obs", action="store_true", help="video of the 84x84 network input with attention")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    parser.add_argument("--deterministic", action="store_true", help="argmax actions (the original samples)")
    parser.add_argument("--video-format", choices=tuple(CODECS), default="mkv", help="mkv: lossless FFV1; mp4: H.264")
    parser.add_argument("--video-env", type=int, help="record only this environment instead of all, tiled")
    parser.add_argument("--breakout-infinite", action="store_true", help="BreakoutInfinite: bricks respawn after 864")
    parser.add_argument("--env-backend", choices=BACKENDS, default="baselines")
    add_compute_arguments(parser)
    parser.add_argument("--force", action="store_true", help="overwrite results already in --output-dir")


def _saliency(args: argparse.Namespace) -> None:
    from fl_saliency.atari_head.benchmark import SaliencySettings, run_benchmark

    run_benchmark(SaliencySettings(
        experiment_dir=Path(args.experiment_dir), atari_head_dir=Path(args.atari_head_dir),
        output_dir=Path(args.output_dir), eval_seed=args.eval_seed, processed_obs=args.processed_obs,
        gaze_alignment=args.gaze_alignment, sauc_mode=args.sauc_mode, trials=args.trials, video=args.video,
        device=args.device, progress=args.progress, force=args.force,
    ))


def add_saliency_arguments(parser: argparse.ArgumentParser) -> None:
    """The original benchmark_atari_head.py flags, plus alignment, sAUC mode, trial subset and video."""
    from fl_saliency.atari_head.benchmark import SAUC_MODES
    from fl_saliency.atari_head.gaze import ALIGNMENTS

    parser.add_argument("--experiment-dir", required=True, help="folder with model.pkl and config.json")
    parser.add_argument("--atari-head-dir", required=True, help="Atari-HEAD as downloaded (release 2 or 4) or extracted")
    parser.add_argument("--output-dir", required=True, help="where saliency.pkl, saliency.json and saliency.csv go")
    parser.add_argument("--eval-seed", type=int, default=1000, help="kept for the original's interface (affects nothing)")
    parser.add_argument("--processed-obs", action="store_true", help="score at 84x84 instead of the raw 210x160")
    parser.add_argument("--progress", action="store_true", help="show a progress bar over trials")
    parser.add_argument("--gaze-alignment", choices=ALIGNMENTS, default="original",
                        help="original: the paper's rows (one PNG early); displayed: the PNGs the stack shows")
    parser.add_argument("--sauc-mode", choices=SAUC_MODES, default="exact",
                        help="exact: count-weighted AUC; sampled: the original's 100 random draws, bit for bit")
    parser.add_argument("--trials", type=lambda s: [int(t) for t in s.split(",")], help="comma-separated trial numbers")
    parser.add_argument("--video", action="store_true", help="per trial, an MP4 of frames, attention and gaze")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    parser.add_argument("--force", action="store_true", help="overwrite a saliency.pkl already in --output-dir")


def _make_sample_trial(args: argparse.Namespace) -> None:
    from fl_saliency.atari_head.sample import make_sample_trial

    path = make_sample_trial(args.game, args.frames, Path(args.out), layout=args.layout, seed=args.seed,
                             trial_number=args.trial_number)
    print(f"synthetic {args.game} trial of {args.frames} frames ({args.layout} layout) written to {path}")


def _sweep(args: argparse.Namespace) -> None:
    from fl_saliency.ppo import PPOConfig
    from fl_saliency.sweep import plan, sweep

    evaluate = None
    if args.evaluate:
        try:
            num_env, evals_per_env = (int(v) for v in args.evaluate.split(":"))
        except ValueError:
            raise FlSaliencyError(f"--evaluate takes NUM_ENV:EVALS_PER_ENV, e.g. 16:512; got {args.evaluate!r}") from None
        evaluate = (num_env, evals_per_env)
    ppo = PPOConfig(num_envs=args.num_env, nsteps=args.nsteps, nminibatches=args.nminibatches, noptepochs=args.noptepochs)
    jobs = plan(args.games.split(","), args.networks.split(","), [int(s) for s in args.seeds.split(",")],
                args.num_timesteps, Path(args.output_dir), ppo=ppo, evaluate=evaluate, max_eplen=args.max_eplen,
                atari_head_dir=Path(args.saliency) if args.saliency else None, env_backend=args.env_backend,
                precision=args.precision, device=args.device)
    results = sweep(jobs, address=args.address)
    if any(r["status"] == "failed" for r in results):
        raise FlSaliencyError("some jobs failed (see above); run the same command again to retry them")


def _report(args: argparse.Namespace) -> None:
    from fl_saliency.report import write_report

    path = write_report(Path(args.sweep_dir), Path(args.output_dir) if args.output_dir else None)
    print(f"report written to {path}")


def _demo(args: argparse.Namespace) -> None:
    from fl_saliency.demo import run_demo

    run_demo(Path(args.output_dir))


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad arguments give one line naming the problem (``--help`` has the usage)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="fl-saliency",
        description="Free-Lunch Saliency via Attention in Atari Agents, in PyTorch.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    networks = commands.add_parser("networks", help="list the 15 networks with parameter counts and attention grids")
    networks.add_argument("--env-name", default="BreakoutNoFrameskip-v4", help="game whose action count sizes the policy head")
    networks.add_argument("--json", action="store_true", help="print a JSON list of {name, params, grid}")
    networks.set_defaults(run=_networks)

    inspect = commands.add_parser("inspect", help="show a Baselines model.pkl and check it against its network")
    inspect.add_argument("path", help="a model.pkl, or an experiment folder holding model.pkl and config.json")
    inspect.set_defaults(run=_inspect)

    train = commands.add_parser("train", help="train a PPO agent (the original train_baselines.py)")
    add_train_arguments(train)
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a model: results.json and a perception video")
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(run=_evaluate)

    saliency = commands.add_parser("saliency", help="score attention against Atari-HEAD gaze (benchmark_atari_head.py)")
    add_saliency_arguments(saliency)
    saliency.set_defaults(run=_saliency)

    sweep = commands.add_parser("sweep", help="run a grid of games x networks x seeds as Ray tasks")
    sweep.add_argument("--games", required=True, help="comma-separated, e.g. Breakout,MsPacman")
    sweep.add_argument("--networks", required=True, help="comma-separated network names")
    sweep.add_argument("--seeds", default="1", help="comma-separated train seeds (paper: 1,9,17,25,33)")
    sweep.add_argument("--num-timesteps", type=int, default=50_000_000)
    sweep.add_argument("--output-dir", required=True, help="sweep folder: <Game>.<network>/<seed>/ per job")
    sweep.add_argument("--evaluate", metavar="NUM_ENV:EVALS_PER_ENV", help="evaluate each model (paper: 16:512)")
    sweep.add_argument("--max-eplen", type=int, default=108_000)
    sweep.add_argument("--saliency", metavar="ATARI_HEAD_DIR", help="score each model against Atari-HEAD")
    sweep.add_argument("--address", help="an existing Ray cluster (default: start Ray locally)")
    sweep.add_argument("--num-env", type=int, default=8)
    sweep.add_argument("--nsteps", type=int, default=128)
    sweep.add_argument("--nminibatches", type=int, default=4)
    sweep.add_argument("--noptepochs", type=int, default=4)
    sweep.add_argument("--env-backend", default="baselines", help="baselines or ale-vector")
    sweep.add_argument("--precision", default="fp32", help="fp32 (the original) or bf16 (mixed precision)")
    sweep.add_argument("--device", default="auto")
    sweep.set_defaults(run=_sweep)

    report = commands.add_parser("report", help="report.md and plots of a sweep folder against the paper's tables")
    report.add_argument("sweep_dir", help="a sweep folder (ours or the paper's released models)")
    report.add_argument("--output-dir", help="where report.md and the plots go (default: the sweep folder)")
    report.set_defaults(run=_report)

    demo = commands.add_parser("demo", help="train, evaluate, score and report on built-in defaults (offline)")
    demo.add_argument("--output-dir", default="fl-saliency-demo")
    demo.set_defaults(run=_demo)

    sample = commands.add_parser("make-sample-trial", help="write a synthetic Atari-HEAD trial from real emulator frames")
    sample.add_argument("--game", default="Breakout")
    sample.add_argument("--frames", type=int, default=2000)
    sample.add_argument("--out", required=True, help="dataset folder to write (or add) the trial to")
    sample.add_argument("--layout", choices=("release2", "release4"), default="release2")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--trial-number", type=int, default=900)
    sample.set_defaults(run=_make_sample_trial)
    return parser


def main(argv: list[str] | None = None) -> int:
    from fl_saliency.stopping import interrupt_on_stop_signals

    args = build_parser().parse_args(argv)
    try:
        with interrupt_on_stop_signals():  # SIGTERM as Ctrl-C: every command's cleanup runs
            args.run(args)
    except FlSaliencyError as exc:
        print(f"fl-saliency: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fl-saliency: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        from fl_saliency.io import is_disk_full

        if not is_disk_full(exc):
            raise
        print(f"fl-saliency: error: no space left on the device{f' of {exc.filename}' if exc.filename else ''}; "
              f"free space and run the command again", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
