import json

import pytest

from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.ppo.logger import MonitorCSV, ProgressLogger, format_table, read_monitor

KEYS = ("nupdates", "total_timesteps", "policy_loss")


def test_format_table_is_baselines_human_output():
    # Baselines' HumanOutputFormat: keys sorted, every number (ints too) as %-8.3g, long cells cut at 30 characters.
    assert format_table({"nupdates": 3, "policy_loss": -0.012345678, "total_timesteps": 49999872,
                         "a_very_long_key_of_thirty_one_c": "x"}) == "\n".join([
        "---------------------------------------------",
        "| a_very_long_key_of_thirty_o... | x        |",
        "| nupdates                       | 3        |",
        "| policy_loss                    | -0.0123  |",
        "| total_timesteps                | 5e+07    |",
        "---------------------------------------------",
    ])


def test_monitor_csv_round_trip_and_append(tmp_path):
    monitor = MonitorCSV(tmp_path, "BreakoutNoFrameskip-v4", 2)
    monitor.write(1, {"r": 2.0, "l": 180, "t": 3.5})
    monitor.close()
    text = (tmp_path / "0.1.monitor.csv").read_text().splitlines()
    assert json.loads(text[0][1:])["env_id"] == "BreakoutNoFrameskip-v4" and text[1:] == ["r,l,t", "2.0,180,3.5"]
    monitor = MonitorCSV(tmp_path, "BreakoutNoFrameskip-v4", 2, append=True)
    monitor.write(1, {"r": 0.0, "l": 90, "t": 9.0})
    monitor.close()
    header, rows = read_monitor(tmp_path / "0.1.monitor.csv")
    assert header["env_id"] == "BreakoutNoFrameskip-v4"
    assert rows == [{"r": 2.0, "l": 180, "t": 3.5}, {"r": 0.0, "l": 90, "t": 9.0}]
    assert read_monitor(tmp_path / "0.0.monitor.csv")[1] == []


def log_updates(out, updates, resume_after=None):
    logger = ProgressLogger(out, KEYS, step_key="total_timesteps", resume_after=resume_after, echo=lambda text: None)
    for u in updates:
        logger.log({"nupdates": u, "total_timesteps": 10 * u, "policy_loss": u / 100, "unlogged": 0})
    logger.close()


def scalars(out, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted((out / "tb").glob("events.out.tfevents.*"))
    assert len(files) == 1
    accumulator = EventAccumulator(str(files[0]), size_guidance={"scalars": 0})
    accumulator.Reload()
    return [(e.step, round(e.value, 6)) for e in accumulator.Scalars(tag)]


def test_resume_drops_what_was_logged_after_the_checkpoint_everywhere(tmp_path):
    log_updates(tmp_path, [1, 2, 3, 4])  # killed after logging update 4; the checkpoint holds update 2
    log_updates(tmp_path, [3, 4, 5], resume_after=20)
    rows = (tmp_path / "logs" / "progress.csv").read_text().splitlines()
    assert rows == ["nupdates,total_timesteps,policy_loss"] + [f"{u},{10 * u},{u / 100}" for u in range(1, 6)]
    text = (tmp_path / "logs" / "log.txt").read_text()
    assert text == "".join(format_table({"nupdates": u, "total_timesteps": 10 * u, "policy_loss": u / 100}) + "\n"
                           for u in range(1, 6))
    assert scalars(tmp_path, "nupdates") == [(10 * u, float(u)) for u in range(1, 6)]
    assert scalars(tmp_path, "policy_loss") == [(10 * u, u / 100) for u in range(1, 6)]


def test_a_new_run_starts_the_logs_afresh(tmp_path):
    log_updates(tmp_path, [1, 2])
    for path in (tmp_path / "tb").iterdir():  # as train --force leaves it
        path.unlink()
    log_updates(tmp_path, [1])
    assert (tmp_path / "logs" / "progress.csv").read_text().splitlines()[1:] == ["1,10,0.01"]
    assert (tmp_path / "logs" / "log.txt").read_text().count("| nupdates ") == 1


def test_a_line_cut_by_a_kill_is_dropped_on_resume(tmp_path):
    log_updates(tmp_path, [1, 2, 3])
    progress = tmp_path / "logs" / "progress.csv"
    progress.write_text(progress.read_text() + "1")  # a fourth row, cut by a kill after its first character
    monitor = tmp_path / "logs" / "0.0.monitor.csv"
    MonitorCSV(tmp_path / "logs", "BreakoutNoFrameskip-v4", 1).close()
    monitor.write_text(monitor.read_text() + "3.0,200,1.5\n4.0,2")
    log_updates(tmp_path, [4], resume_after=30)
    assert [row.split(",")[0] for row in progress.read_text().splitlines()[1:]] == ["1", "2", "3", "4"]
    MonitorCSV(tmp_path / "logs", "BreakoutNoFrameskip-v4", 1, append=True).close()
    assert read_monitor(monitor)[1] == [{"r": 3.0, "l": 200, "t": 1.5}]


def test_an_unreadable_progress_csv_is_one_line(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "progress.csv").write_text("nupdates,total_timesteps\nabc,xyz\n")
    with pytest.raises(FlSaliencyError, match=r"progress.csv is not a progress.csv of fl-saliency"):
        log_updates(tmp_path, [1], resume_after=10)
