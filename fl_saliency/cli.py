"""``fl-saliency``: argument parsing and one-line errors; the work happens in the package modules."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import typing
from pathlib import Path

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.settings import MISSING, base_type, field_types, flag_of, parse_value, setting


def _networks(args: argparse.Namespace) -> None:
    from fl_saliency.envs.games import num_actions
    from fl_saliency.agents.networks import NETWORKS, ActorCritic, parameter_count

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
    from fl_saliency.agents import checkpoint
    from fl_saliency.agents.base import check_action_count
    from fl_saliency.common import rundir
    from fl_saliency.agents.networks import ActorCritic
    from fl_saliency.envs.protocol import protocol_of_config

    path = Path(args.path)
    if not path.is_dir() and path.suffix != ".pkl":
        from fl_saliency.agents.choice import AgentOptions

        _inspect_agent(path, settings_from_args(AgentOptions, args))
        return
    model_path = path / rundir.MODEL_FILE if path.is_dir() else path
    config_path = model_path.parent / rundir.CONFIG_FILE
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
    checkpoint.check_finite_params(params, str(model_path))

    if experiment is None:
        matches = checkpoint.matching_networks(params)
        print(f"matches:    {', '.join(matches) if matches else 'no known network'}")
        if not matches:
            raise checkpoint.CheckpointError(f"{model_path} matches none of the 15 networks")
        return
    check_action_count(n_actions, experiment.env_name, str(model_path),
                       protocol_of_config(experiment.config).full_action_space, name_the_set=False)
    checkpoint.check_params(params, ActorCritic(experiment.network, n_actions, initialise=False), str(model_path))
    print(f"matches:    yes, every parameter of {experiment.network} with the right shape")


def _inspect_agent(path: Path, options) -> None:
    """What an agent file of another library is, as ``load_agent`` reads it with ``options`` (``AgentOptions``)."""
    from fl_saliency.agents import describe_agent

    about = describe_agent(path, **options.load_options())
    print(f"agent:       {path}")
    print(f"library:     {about['library']}")
    print(f"algorithm:   {about['algorithm']}")
    print(f"network:     {about['network'] or '(not named)'}")
    print(f"game:        {about['env_name'] or '(not recorded; give the commands --env-name)'}")
    print(f"actions:     {about['n_actions']} ({about['scores_kind']})")
    print(f"value head:  {'yes' if about['has_value'] else 'no (the -critic methods are refused)'}")
    print(f"attention:   {'yes' if about['has_attention'] else 'no (use a post-hoc method, e.g. gradient)'}")
    print(f"observation: {about['observation']}")


def _train(args: argparse.Namespace) -> None:
    from fl_saliency.ppo.train import TrainSettings, train

    model = train(settings_from_args(TrainSettings, args))
    print(f"model saved to {model}")


def _evaluate(args: argparse.Namespace) -> None:
    from fl_saliency.evaluation.evaluate import EvalSettings, evaluate

    evaluate(settings_from_args(EvalSettings, args))


def _saliency(args: argparse.Namespace) -> None:
    from fl_saliency.scoring.benchmark import SaliencySettings, run_benchmark

    run_benchmark(settings_from_args(SaliencySettings, args))


def _faithfulness(args: argparse.Namespace) -> None:
    from fl_saliency.scoring.faithfulness import FaithfulnessSettings, run_faithfulness

    run_faithfulness(settings_from_args(FaithfulnessSettings, args))


def _make_sample_trial(args: argparse.Namespace) -> None:
    from fl_saliency.scoring.atari_head.sample import make_sample_trial

    path = make_sample_trial(args.game, args.frames, Path(args.out), layout=args.layout, seed=args.seed,
                             trial_number=args.trial_number, force=args.force)
    print(f"synthetic {args.game} trial of {args.frames} frames ({args.layout} layout) written to {path}")


def _sweep(args: argparse.Namespace) -> None:
    from fl_saliency.sweep.grid import SweepSettings, plan, sweep

    settings = settings_from_args(SweepSettings, args)
    results = sweep(plan(settings), address=settings.address, max_retries=settings.max_retries,
                    connect_timeout=settings.connect_timeout)
    if any(r["status"] == "failed" for r in results):
        raise FlSaliencyError("some jobs failed (see above); run the same command again to retry them")


def _report(args: argparse.Namespace) -> None:
    from fl_saliency.report import report_location
    from fl_saliency.common.io import reject_uri

    if args.output_dir:
        reject_uri(args.output_dir, "--output-dir")
    print(f"report written to {report_location(args.sweep_dir, Path(args.output_dir) if args.output_dir else None)}")


def _export(args: argparse.Namespace) -> None:
    from fl_saliency.report.model_card import ExportSettings, export

    export(settings_from_args(ExportSettings, args))


def _demo(args: argparse.Namespace) -> None:
    from fl_saliency.sweep.demo import run_demo

    run_demo(Path(args.output_dir))


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad arguments give one line naming the problem (``--help`` has the usage)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` shows each flag's default (not for switches that are off and settings with none)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or action.required or default is None or default is False or default == argparse.SUPPRESS:
            return text
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


def _flag_type(field: dataclasses.Field, annotation):
    """argparse ``type=``: the field's own parsing and range check; a refusal is argparse's one-line error."""

    def parse(text: str):
        try:
            return parse_value(field, annotation, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_settings_arguments(parser: argparse.ArgumentParser, cls) -> None:
    """One flag per field of the settings dataclass ``cls`` (and of the settings dataclasses nested in it),
    with the field's flag name, help, default, choices and range."""
    hints = field_types(cls)
    for field in dataclasses.fields(cls):
        kind, _ = base_type(hints[field.name])
        if dataclasses.is_dataclass(kind):
            add_settings_arguments(parser, kind)
            continue
        m = field.metadata
        if "help" not in m:
            raise TypeError(f"{cls.__name__}.{field.name} is not declared with settings.setting()")
        default = field.default_factory() if field.default_factory is not MISSING else field.default
        options = {"dest": field.name, "help": m["help"]}
        if kind is bool:
            action = argparse.BooleanOptionalAction if default else "store_true"
            parser.add_argument(flag_of(field), action=action, default=default, **options)
            continue
        # A field that allows None but has no default (it keeps its place among the positional fields in Python)
        # is optional on the command line, None when not given.
        if default is MISSING and type(None) in typing.get_args(hints[field.name]):
            default = None
        if not flag_of(field).startswith("-"):  # a positional argument: argparse takes its dest from the name
            del options["dest"]
            if default is not MISSING:
                options.update(nargs="?", default=default)
        elif default is MISSING:
            options["required"] = True
        else:
            options["default"] = default
        if m.get("choices") and kind not in (list, tuple):  # a list's items are checked by parse_value
            options["choices"] = m["choices"]
        else:
            options["type"] = _flag_type(field, hints[field.name])
            options["metavar"] = m.get("metavar") or flag_of(field).lstrip("-").replace("-", "_").upper()
        parser.add_argument(flag_of(field), **options)


def settings_from_args(cls, args: argparse.Namespace):
    """The settings dataclass ``cls`` from the flags that add_settings_arguments made of it."""
    hints = field_types(cls)
    values = {}
    for field in dataclasses.fields(cls):
        kind, _ = base_type(hints[field.name])
        values[field.name] = settings_from_args(kind, args) if dataclasses.is_dataclass(kind) else getattr(args, field.name)
    return cls(**values)


def _number(kind: type, **bounds):
    """argparse ``type=`` for a number flag that has no settings dataclass, with the same parsing and message."""
    return _flag_type(setting(help="", **bounds), kind)


def settings_arguments(module: str, settings_class: str):
    """The flags of a settings dataclass, imported only when that command's parser is built (--help stays fast)."""
    def add(parser: argparse.ArgumentParser) -> None:
        add_settings_arguments(parser, getattr(importlib.import_module(module), settings_class))

    return add


def _networks_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-name", default="BreakoutNoFrameskip-v4", help="game whose action count sizes the policy head")
    parser.add_argument("--json", action="store_true", help="print a JSON list of {name, params, grid}")


def _inspect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a model.pkl, or an experiment folder holding model.pkl and config.json; or an "
                                     "agent file: a Stable-Baselines3 zip, a CleanRL state dict, a TorchScript file")
    settings_arguments("fl_saliency.agents.choice", "AgentOptions")(parser)


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_dir", help="a sweep folder (ours or the paper's released models), or the storage URI "
                                          "of a sweep (s3://..., gs://..., file:///...)")
    parser.add_argument("--output-dir", help="where report.md and the plots go (default: the sweep folder)")


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default="fl-saliency-demo", help="where the demo's runs and report go")


def _make_sample_trial_arguments(parser: argparse.ArgumentParser) -> None:
    from fl_saliency.scoring.atari_head.sample import LAYOUTS

    parser.add_argument("--game", default="Breakout", help="game whose emulator frames make the trial")
    parser.add_argument("--frames", type=_number(int, min=1), default=2000, help="frames in the trial")
    parser.add_argument("--out", required=True, help="dataset folder to write (or add) the trial to")
    parser.add_argument("--layout", choices=LAYOUTS, default="release2",
                        help="the folder layout of Atari-HEAD's release 2 or 4")
    parser.add_argument("--seed", type=_number(int, min=0), default=0, help="seed of the agent's actions and the gaze")
    parser.add_argument("--trial-number", type=_number(int, min=0), default=900, help="number of the trial")
    parser.add_argument("--force", action="store_true", help="replace a trial of the same number in --out")


# name: (help, add the arguments, run)
COMMANDS = {
    "networks": ("list the 15 networks with parameter counts and attention grids", _networks_arguments, _networks),
    "inspect": ("show a Baselines model.pkl and check it against its network, or what an agent file is",
                _inspect_arguments, _inspect),
    "train": ("train a PPO agent (the original train_baselines.py)",
              settings_arguments("fl_saliency.ppo.train", "TrainSettings"), _train),
    "evaluate": ("evaluate an agent: results.json and a perception video (run_baselines.py)",
                 settings_arguments("fl_saliency.evaluation.evaluate", "EvalSettings"), _evaluate),
    "saliency": ("score an agent's saliency maps against Atari-HEAD gaze (benchmark_atari_head.py)",
                 settings_arguments("fl_saliency.scoring.benchmark", "SaliencySettings"), _saliency),
    "faithfulness": ("deletion/insertion AUC and the model-randomisation check of saliency methods",
                     settings_arguments("fl_saliency.scoring.faithfulness", "FaithfulnessSettings"), _faithfulness),
    "sweep": ("run a grid of games x networks x seeds as Ray tasks",
              settings_arguments("fl_saliency.sweep.grid", "SweepSettings"), _sweep),
    "report": ("report.md and plots of a sweep folder against the paper's tables", _report_arguments, _report),
    "export": ("a Hugging Face Hub model folder: card with results, the agent, replay MP4 (no upload)",
               settings_arguments("fl_saliency.report.model_card", "ExportSettings"), _export),
    "demo": ("train, evaluate, score and report on built-in defaults (offline)", _demo_arguments, _demo),
    "make-sample-trial": ("write a synthetic Atari-HEAD trial from real emulator frames", _make_sample_trial_arguments,
                          _make_sample_trial),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``fl-saliency`` parser. Only the command named in ``argv`` gets its flags (all when ``argv`` is None):
    deriving them imports the command's module, which ``fl-saliency --help`` need not wait for."""
    parser = OneLineErrorParser(prog="fl-saliency", formatter_class=DefaultsHelpFormatter,
                                description="Free-Lunch Saliency via Attention in Atari Agents, in PyTorch.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((arg for arg in argv if not arg.startswith("-")), None) if argv is not None else None
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        command = commands.add_parser(name, help=help_text, description=help_text, formatter_class=DefaultsHelpFormatter)
        if argv is None or name == chosen:
            add_arguments(command)
        command.set_defaults(run=run)
    return parser


def build_command_parser(command: str, prog: str) -> argparse.ArgumentParser:
    """The parser of one command on its own, as the original scripts (train_baselines.py, ...) take it."""
    help_text, add_arguments, run = COMMANDS[command]
    parser = OneLineErrorParser(prog=prog, description=help_text, formatter_class=DefaultsHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None, command: str | None = None, prog: str | None = None) -> int:
    """``fl-saliency [COMMAND] ...``; with ``command``, that command's flags alone under the name ``prog``.

    Without ``argv`` (the process's own command line), SIGINT and SIGTERM are ignored once the command has ended.
    """
    from fl_saliency.common.stopping import stoppable_command

    last, argv = argv is None, sys.argv[1:] if argv is None else argv
    prog = (prog or command) if command else "fl-saliency"
    try:
        with stoppable_command(last):  # SIGTERM as Ctrl-C: every command's cleanup runs
            parser = build_command_parser(command, prog) if command else build_parser(argv)
            args = parser.parse_args(argv)
            args.run(args)
    except FlSaliencyError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        from fl_saliency.common.io import is_disk_full

        if not is_disk_full(exc):
            raise
        print(f"{prog}: error: no space left on the device{f' of {exc.filename}' if exc.filename else ''}; "
              f"free space and run the command again", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
