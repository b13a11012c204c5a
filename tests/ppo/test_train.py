import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fl_saliency.agents.checkpoint import load_model, load_params
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.ppo.logger import read_monitor
from fl_saliency.agents.networks import NETWORKS
from fl_saliency.ppo.train import PROGRESS_KEYS, TrainSettings, load_checkpoint, prepare_output_dir, train
from helpers import TINY_FLAGS, run_main, tiny_ppo, tiny_settings

ROOT = Path(__file__).resolve().parents[2]


def run_script(*args, **kwargs):
    return subprocess.run([sys.executable, str(ROOT / "train_baselines.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, **kwargs)


def read_progress(out):
    import csv

    with open(out / "logs" / "progress.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("network", list(NETWORKS))
def test_every_network_trains_two_updates(tmp_path, network):
    out = tmp_path / network
    # The dense networks cost ~200x the sparse ones on a CPU: a shorter rollout keeps the test quick.
    nsteps = 4 if "dense" in network else 16
    model_path = train(tiny_settings(out, network, ppo=tiny_ppo(nsteps=nsteps)), echo=lambda text: None)
    model, experiment = load_model(out)
    assert experiment.network == network and model_path == out / "model.pkl"
    rows = read_progress(out)
    assert [int(r["nupdates"]) for r in rows] == [1, 2]
    assert all(np.isfinite(float(rows[-1][k])) for k in ("policy_loss", "value_loss", "policy_entropy"))


@pytest.mark.subprocess
def test_script_writes_the_original_outputs(tmp_path):
    out = tmp_path / "run"
    result = run_script("--output-dir", str(out), "--network", "cnn_sparse_fls", "--env-name", "BreakoutNoFrameskip-v4",
                        "--train-seed", "3", "--num-timesteps", "1024", "--num-env", "2", "--nsteps", "128",
                        "--nminibatches", "2", "--noptepochs", "1")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["0.0.monitor.csv", "0.1.monitor.csv", "log.txt", "progress.csv"]
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 1
    config = json.loads((out / "config.json").read_text())
    assert config["network"] == "cnn_sparse_fls" and config["train_seed"] == 3 and config["num_timesteps"] == 1024
    assert config["ppo"]["nsteps"] == 128 and config["ppo"]["cliprange"] == 0.1 and config["ppo"]["value_clip"] is True
    rows = read_progress(out)
    assert tuple(rows[0]) == PROGRESS_KEYS and len(rows) == 4
    assert int(rows[-1]["total_timesteps"]) == 1024 and int(rows[-1]["serial_timesteps"]) == 512
    # The table printed to stdout is the one in log.txt.
    log_text = (out / "logs" / "log.txt").read_text()
    assert "| policy_entropy" in log_text and log_text in result.stdout
    header, episodes = read_monitor(out / "logs" / "0.0.monitor.csv")
    assert header["env_id"] == "BreakoutNoFrameskip-v4" and "t_start" in header
    assert (out / "logs" / "0.0.monitor.csv").read_text().splitlines()[1] == "r,l,t"
    # 512 steps of a near-random Breakout policy end at least one 5-life game in each env.
    _, episodes1 = read_monitor(out / "logs" / "0.1.monitor.csv")
    assert episodes and episodes1 and all(e["l"] > 100 and e["r"] >= 0 for e in episodes + episodes1)
    assert float(rows[-1]["eprewmean"]) == pytest.approx(np.mean([e["r"] for e in episodes + episodes1]))
    params = load_params(out / "model.pkl")
    assert params["ppo2_model/pi/h1/w:0"].shape == (3, 3, 64, 256)


@pytest.mark.slow
def test_same_seed_same_losses_and_model_on_cpu(tmp_path):
    for name in ("a", "b"):
        train(tiny_settings(tmp_path / name, "cnn_sparse_fls", updates=2), echo=lambda text: None)
    drop = {"fps", "time_elapsed"}
    rows_a, rows_b = read_progress(tmp_path / "a"), read_progress(tmp_path / "b")
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows_a] == [
        {k: v for k, v in r.items() if k not in drop} for r in rows_b
    ]
    pa, pb = load_params(tmp_path / "a" / "model.pkl"), load_params(tmp_path / "b" / "model.pkl")
    assert pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k]) for k in pa)
    train(tiny_settings(tmp_path / "c", "cnn_sparse_fls", updates=2, train_seed=2), echo=lambda text: None)
    pc = load_params(tmp_path / "c" / "model.pkl")
    assert not np.array_equal(pa["ppo2_model/pi/c1/w:0"], pc["ppo2_model/pi/c1/w:0"])


@pytest.mark.slow
def test_existing_run_is_refused_unless_resume_or_force(tmp_path):
    out = tmp_path / "run"
    train(tiny_settings(out), echo=lambda text: None)
    before = (out / "model.pkl").read_bytes()
    with pytest.raises(FlSaliencyError, match="already holds a run .*--resume.*--force"):
        train(tiny_settings(out), echo=lambda text: None)
    assert (out / "model.pkl").read_bytes() == before
    with pytest.raises(FlSaliencyError, match="already finished all 2 updates"):
        train(tiny_settings(out, resume=True), echo=lambda text: None)
    train(tiny_settings(out, updates=3, force=True), echo=lambda text: None)
    assert len(read_progress(out)) == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["--network", "cnn_magic"], "unknown network 'cnn_magic'"),
        (["--env-name", "Zork"], "unknown Atari game 'Zork'"),
        (["--num-timesteps", "16"], "below one update of num_env x nsteps = 32"),
        (["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "tpu"], "--device"),
        (["--precision", "fp8"], "--precision: invalid choice: 'fp8'"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path, capsys, args, message):
    code, stderr = run_main(capsys, ["--output-dir", str(tmp_path / "x"), "--num-timesteps", "64", *TINY_FLAGS, *args],
                            command="train", prog="train_baselines.py")
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], stderr


@pytest.mark.subprocess
def test_unwritable_output_folder_is_one_line(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/fl-saliency-run"  # root may write anywhere else
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "run")
    result = run_script("--output-dir", target, "--num-timesteps", "64", *TINY_FLAGS)
    assert result.returncode == 2 and "cannot write to output folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def wait_for(path, timeout=60):
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.subprocess
def test_killed_run_resumes_to_the_end(tmp_path):
    out = tmp_path / "run"
    args = ["--output-dir", str(out), "--network", "cnn", "--num-timesteps", str(15 * 32), "--save-interval", "1", *TINY_FLAGS]
    proc = subprocess.Popen([sys.executable, str(ROOT / "train_baselines.py"), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(out / "checkpoint.pt")
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = load_checkpoint(out / "checkpoint.pt")["update"]
    assert 1 <= saved < 15
    result = run_script(*args, "--resume")
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(out / "checkpoint.pt")["update"] == 15
    assert [int(r["nupdates"]) for r in read_progress(out)] == list(range(1, 16))


@pytest.mark.subprocess
def test_ctrl_c_saves_a_checkpoint_and_stops_cleanly(tmp_path):
    out = tmp_path / "run"
    args = ["--output-dir", str(out), "--network", "cnn", "--num-timesteps", str(200 * 32), "--save-interval", "1000", *TINY_FLAGS]
    proc = subprocess.Popen([sys.executable, str(ROOT / "train_baselines.py"), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for(out / "logs" / "progress.csv")
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "checkpoint saved, continue with --resume" in stderr
    saved = load_checkpoint(out / "checkpoint.pt")["update"]
    assert 1 <= saved < 200 and (out / "model.pkl").exists()
    assert int(read_progress(out)[-1]["nupdates"]) == saved


@pytest.mark.slow
def test_resume_restores_exactly_what_was_saved(tmp_path):
    out = tmp_path / "run"
    train(tiny_settings(out, "cnn_sparse_fls", updates=2), echo=lambda text: None)
    saved = load_checkpoint(out / "checkpoint.pt")
    from fl_saliency.ppo.train import PPO, ActorCritic

    ppo = PPO(ActorCritic("cnn_sparse_fls", 4), tiny_settings(out).ppo, seed=123, device=torch.device("cpu"))
    ppo.load_state_dict(saved["ppo"])
    restored = ppo.state_dict()
    for key, tensor in saved["ppo"]["model"].items():
        assert torch.equal(restored["model"][key], tensor), key
    assert restored["rng"] == saved["ppo"]["rng"]
    assert torch.equal(restored["torch_rng"], saved["ppo"]["torch_rng"])
    opt_saved, opt_restored = saved["ppo"]["optimizer"], restored["optimizer"]
    assert opt_saved["param_groups"] == opt_restored["param_groups"]
    for k in opt_saved["state"]:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(opt_saved["state"][k][name], opt_restored["state"][k][name])
    assert saved["update"] == 2
    monitored = [e["r"] for rank in (0, 1) for e in read_monitor(out / "logs" / f"0.{rank}.monitor.csv")[1]]
    assert sorted(saved["episodes"]["rewards"]) == sorted(monitored)
    # The Baselines model.pkl written with the checkpoint holds the same weights.
    params = load_params(out / "model.pkl")
    w = saved["ppo"]["model"]["extractor.features.c1.weight"].numpy().transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(params["ppo2_model/pi/c1/w:0"], w)


@pytest.mark.slow
def test_checkpoint_that_does_not_fit_is_one_line(tmp_path):
    out = tmp_path / "run"
    train(tiny_settings(out, updates=1), echo=lambda text: None)
    saved = load_checkpoint(out / "checkpoint.pt")
    weight = saved["ppo"]["model"]["extractor.fc1.weight"]
    saved["ppo"]["model"]["extractor.fc1.weight"] = weight.t().contiguous()  # nn.Linear's (out, in) layout
    saved["update"] = 0  # as if killed before the end
    torch.save(saved, out / "checkpoint.pt")
    with pytest.raises(FlSaliencyError, match=r"checkpoint.pt does not fit a cnn run of this version: "
                                              r"size mismatch for extractor.fc1.weight") as error:
        train(tiny_settings(out, updates=1, resume=True), echo=lambda text: None)
    assert "\n" not in str(error.value)


def test_bf16_run_records_its_precision_and_resumes_with_it(tmp_path):
    out = tmp_path / "run"
    train(tiny_settings(out, "cnn_sparse_fls", updates=1, precision="bf16"), echo=lambda text: None)
    config = json.loads((out / "config.json").read_text())
    assert config["precision"] == "bf16"
    assert TrainSettings.from_config(out, config).precision == "bf16"  # what --resume runs with
    del config["precision"]  # a config written before the option: the original's fp32
    assert TrainSettings.from_config(out, config).precision == "fp32"


@pytest.mark.slow
def test_log_interval_keeps_the_first_and_the_last_update(tmp_path):
    train(tiny_settings(tmp_path / "run", updates=5, log_interval=2), echo=lambda text: None)
    assert [int(r["nupdates"]) for r in read_progress(tmp_path / "run")] == [1, 2, 4, 5]


def logged_tables(out):
    """The nupdates of each table in log.txt, in order."""
    return [int(line.split("|")[2]) for line in (out / "logs" / "log.txt").read_text().splitlines()
            if line.startswith("| nupdates ")]


def tensorboard_steps(out, tag="nupdates"):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted((out / "tb").glob("events.out.tfevents.*"))
    assert len(files) == 1, files
    accumulator = EventAccumulator(str(files[0]), size_guidance={"scalars": 0})
    accumulator.Reload()
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


@pytest.mark.subprocess
def test_sigterm_saves_a_checkpoint_and_the_run_resumes_logging_each_update_once(tmp_path):
    out = tmp_path / "run"
    args = ["--output-dir", str(out), "--network", "cnn", "--num-timesteps", str(30 * 32), "--save-interval", "1000",
            *TINY_FLAGS]
    proc = subprocess.Popen([sys.executable, str(ROOT / "train_baselines.py"), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(out / "logs" / "progress.csv")
    time.sleep(1.0)
    proc.terminate()  # SIGTERM to the training process alone, as a scheduler stopping a job
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert stderr.strip().splitlines()[-1].endswith("checkpoint saved, continue with --resume")
    saved = load_checkpoint(out / "checkpoint.pt")["update"]
    assert 1 <= saved < 30 and (out / "model.pkl").exists()
    # The signal came while the update after the last logged one may have run: the logs hold up to the checkpoint.
    assert logged_tables(out) == [int(r["nupdates"]) for r in read_progress(out)] == list(range(1, saved + 1))

    result = run_script(*args, "--resume")
    assert result.returncode == 0, result.stderr
    assert [int(r["nupdates"]) for r in read_progress(out)] == list(range(1, 31))
    assert logged_tables(out) == list(range(1, 31))
    assert tensorboard_steps(out) == [(32 * u, float(u)) for u in range(1, 31)]


@pytest.mark.slow
def test_resume_logs_each_update_once_after_a_kill(tmp_path):
    out = tmp_path / "run"
    train(tiny_settings(out, updates=4, save_interval=2), echo=lambda text: None)
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    checkpoint["update"] = 2  # as if killed during update 4, after the save at update 2
    torch.save(checkpoint, out / "checkpoint.pt")
    train(tiny_settings(out, updates=4, resume=True), echo=lambda text: None)
    assert [int(r["nupdates"]) for r in read_progress(out)] == logged_tables(out) == [1, 2, 3, 4]
    assert [step for step, _ in tensorboard_steps(out)] == [32, 64, 96, 128]


@pytest.mark.slow
def test_force_removes_every_output_of_the_old_run_by_name_and_keeps_the_users_files(tmp_path):
    out = tmp_path / "run"
    train(tiny_settings(out, updates=1), echo=lambda text: None)
    old_outputs = ["results.json", "summary.json", "perception.mkv", "saliency.pkl", "saliency.gradient.pkl",
                   "saliency.json", "saliency.csv", "trial_100.mp4", ".results.json.k3j.tmp", "eval/results.json",
                   "eval/perception.mp4", "eval/videos/vecenv.video.7.video000000.mp4",
                   "eval/videos/vecenv.video.7.video000000.meta.json"]
    users = ["notes.txt", "logs/mine.txt", "eval/keep.txt", "saliency.notes.txt", "tb/README"]
    for name in old_outputs + users:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("old")
    with pytest.raises(FlSaliencyError, match=r"already holds a run \(.*results.json.*saliency.pkl"):
        train(tiny_settings(out, updates=1, network="cnn_daqn"), echo=lambda text: None)
    old_events = [p.relative_to(out).as_posix() for p in (out / "tb").glob("events.out.tfevents.*")]
    lines = []
    train(tiny_settings(out, updates=1, network="cnn_daqn", force=True), echo=lines.append)
    removed = lines[0].removeprefix("--force: removed ").removesuffix(f" from {out}").split(", ")
    run = ["config.json", "model.pkl", "checkpoint.pt", "logs/0.0.monitor.csv", "logs/0.1.monitor.csv",
           "logs/progress.csv", "logs/log.txt"]
    assert sorted(removed) == sorted(run + old_outputs + old_events)
    assert all((out / name).read_text() == "old" for name in users)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()
                  and not p.name.startswith("events.out.tfevents.")) == sorted(run + users)
    assert not (out / "eval" / "videos").exists()  # emptied: removed
    assert json.loads((out / "config.json").read_text())["network"] == "cnn_daqn"


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_second_writer_is_refused_and_a_killed_run_frees_its_folder_at_once(tmp_path, capsys):
    out = tmp_path / "run"
    # A long run whose first checkpoint never comes: killed before it, as a run of the default 50-update interval.
    first = ["--output-dir", str(out), "--num-timesteps", str(10_000 * 32), "--save-interval", "10000", "--device",
             "cpu", *TINY_FLAGS]
    holder = subprocess.Popen([sys.executable, str(ROOT / "train_baselines.py"), *first], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not ((out / "logs" / "progress.csv").exists() and len(read_progress(out)) >= 1):
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        second = ["--output-dir", str(out), "--num-timesteps", "64", "--device", "cpu", *TINY_FLAGS]
        forced = run_script(*second, "--force", "--train-seed", "5")
        assert forced.returncode == 2
        assert forced.stderr.splitlines() == [
            f"train_baselines.py: error: {out} is being written by process {holder.pid} (train_baselines.py "
            f"{' '.join(first)}); wait for it to end (or stop it), then run the command again"]
        assert json.loads((out / "config.json").read_text())["train_seed"] == 1  # the first run's, untouched
        for argv in (["--resume", "--output-dir", str(out), "--device", "cpu"], second):
            code, stderr = run_main(capsys, argv, command="train", prog="train")
            assert code == 2 and f"being written by process {holder.pid} " in stderr
    finally:
        holder.kill()
        holder.wait()
    # At once: the rerun is not refused for the lock but, killed before its first checkpoint, for the run in it, and
    # its advice (--force alone) is a command that works.
    code, stderr = run_main(capsys, second, command="train", prog="train")
    assert code == 2 and stderr == (f"train: error: {out} already holds a run without a checkpoint.pt to continue "
                                    f"from (config.json, logs, tb); pass --force to start over (it deletes them)\n")
    code, stderr = run_main(capsys, [*second, "--resume"], command="train", prog="train")
    assert code == 2 and stderr == (f"train: error: --resume: {out} holds no checkpoint.pt to continue from; start "
                                    f"over instead: the same command with --force in place of --resume (it deletes "
                                    f"config.json, logs, tb)\n")
    code, _ = run_main(capsys, [*second, "--force"], command="train", prog="train")
    assert code == 0 and load_checkpoint(out / "checkpoint.pt")["update"] == 2
    code, stderr = run_main(capsys, ["--output-dir", str(tmp_path / "new"), "--resume"], command="train", prog="train")
    assert code == 2 and stderr.endswith("; start a new run: the same command without --resume\n")
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_resume_refuses_flags_that_differ_from_the_run(tmp_path):
    out = tmp_path / "run"
    train(tiny_settings(out, updates=1, network="cnn_daqn"), echo=lambda text: None)
    (out / "checkpoint.pt").rename(out / "saved.pt")
    checkpoint = load_checkpoint(out / "saved.pt")
    checkpoint["update"] = 0
    torch.save(checkpoint, out / "checkpoint.pt")
    for given, message in [(dict(network="cnn"), "drop --network cnn (the run's is cnn_daqn)"),
                           (dict(updates=3), "drop --num-timesteps 96 (the run's is 32)")]:
        with pytest.raises(FlSaliencyError, match=re.escape(message)):
            train(tiny_settings(out, **{"network": "cnn_daqn", "updates": 1, **given}, resume=True),
                  echo=lambda text: None)
    # A flag at its default is not compared (it may not have been given): the run's value is kept.
    settings = tiny_settings(out, network="cnn_sparse_fls", updates=1, resume=True)
    assert prepare_output_dir(settings).network == "cnn_daqn"
    settings = dataclasses.replace(settings, num_timesteps=TrainSettings(out).num_timesteps)
    assert prepare_output_dir(settings).num_timesteps == 32


@pytest.mark.slow
@pytest.mark.parametrize("edit, message", [
    (lambda c: c["ppo"].update(nsteps="16"), "nsteps is '16', not an int"),
    (lambda c: c.update(num_timesteps=32.0), "num_timesteps is 32.0, not an int"),
    (lambda c: c["ppo"].update(lr=[1]), "lr is [1], not a float"),
    (lambda c: c["ppo"].update(value_clip=1), "value_clip is 1, not a bool"),
])
def test_resume_with_edited_config_types_is_one_line(tmp_path, capsys, edit, message):
    out = tmp_path / "run"
    train(tiny_settings(out, updates=1), echo=lambda text: None)
    config = json.loads((out / "config.json").read_text())
    edit(config)
    (out / "config.json").write_text(json.dumps(config))
    capsys.readouterr()  # the training's progress bar
    code, stderr = run_main(capsys, ["--output-dir", str(out), "--resume"], command="train", prog="train_baselines.py")
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "is not a training config of fl-saliency: " + message in stderr


@pytest.mark.slow
def test_num_timesteps_not_a_multiple_of_the_batch_records_what_runs(tmp_path):
    lines = []
    train(dataclasses.replace(tiny_settings(tmp_path / "run"), num_timesteps=100), echo=lines.append)
    assert lines[0] == ("--num-timesteps 100 is not a multiple of num_env x nsteps = 32: training 96 steps "
                        "(3 updates), as Baselines does; config.json records 96")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["num_timesteps"] == 96
    assert int(read_progress(tmp_path / "run")[-1]["total_timesteps"]) == 96


@pytest.mark.subprocess
def test_full_disk_while_saving_is_one_line_and_keeps_the_last_checkpoint(tmp_path):
    from helpers import mounted_tmpfs

    # Sized from a first run: room for one save of cnn_daqn and its logs, and half the checkpoint of a second.
    probe = tmp_path / "probe"
    train(tiny_settings(probe, "cnn_daqn", updates=1), echo=lambda text: None)
    used = sum(p.stat().st_size for p in probe.rglob("*") if p.is_file())
    model, checkpoint = (probe / "model.pkl").stat().st_size, (probe / "checkpoint.pt").stat().st_size
    size = used + min(model, checkpoint) // 2 + 64 * 1024  # room for update 1's files, not for a second copy
    with mounted_tmpfs(tmp_path / "disk", str(size)) as disk:
        out = disk / "run"
        args = ["--output-dir", str(out), "--network", "cnn_daqn", "--num-timesteps", str(4 * 32), "--save-interval",
                "1", "--device", "cpu", *TINY_FLAGS]
        result = run_script(*args)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines()[-1] == (
            f"train_baselines.py: error: no space left on the device of {out} at update 2/4; the checkpoint of update 1 is "
            "intact: free space and continue with --resume")
        assert load_checkpoint(out / "checkpoint.pt")["update"] == 1
        assert not list(out.glob(".*.tmp"))
