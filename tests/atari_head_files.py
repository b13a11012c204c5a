"""Atari-HEAD files made by hand for the reader's tests: drawn frames, PNGs, tars written with
tarfile, label text and release-2 trials, independent of the package's own writer (sample.py)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import cv2
import numpy as np

HEADER = "frame_id,episode_id,score,duration(ms),unclipped_reward,action,gaze_positions"
R4_HEADER = ("GameName,trial_id,subject_id,load_trial,highest_score,total_frame,total_game_play_time,"
             "total_episode,max_error,avg_error,low_sample_rate,frame_averaging,fps")


def drawn_frame(n: int) -> np.ndarray:
    """A small-PNG RGB frame that differs for every n."""
    frame = np.zeros((210, 160, 3), np.uint8)
    frame[:, :, 0] = n % 251
    frame[(n * 7) % 200:(n * 7) % 200 + 10, (n * 3) % 150:(n * 3) % 150 + 10] = (255, 255 - n % 200, 17)
    frame[0, 0] = (1, 2, 3)  # channel order shows
    return frame


def png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))[1].tobytes()


def tar_bytes(stem: str, utid: str, frames: dict[int, np.ndarray], order: list[int], extra: dict[str, bytes] = {}) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tf:
        d = tarfile.TarInfo(stem)
        d.type = tarfile.DIRTYPE
        tf.addfile(d)
        items = [(f"{stem}/{utid}_{n}.png", png(frames[n])) for n in order] + list(extra.items())
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def label_text(utid: str, n: int) -> str:
    rows = [HEADER]
    for i in range(1, n):
        rows.append(f"{utid}_{i},0,{i},100,0,{i % 18},{i}.25,{i + 1}.50")
    rows.append(f"{utid}_{n}" + ",null" * 6)
    return "\n".join(rows) + "\n"


def write_release2_trial(root: Path, number: int, utid: str, n: int, order=None, game="Breakout",
                         meta_frames=None) -> tuple[str, dict[int, np.ndarray]]:
    stem = f"{number}_{utid}_Feb-20-16-46-45"
    frames = {i: drawn_frame(i + number) for i in range(1, n + 1)}
    (root / f"{stem}.tar.bz2").write_bytes(tar_bytes(stem, utid, frames, order or list(range(1, n + 1))))
    (root / f"{stem}.txt").write_text(label_text(utid, n))
    meta = root / "meta_data.csv"
    if not meta.exists():
        meta.write_text("TrialNumber,NumberOfFrames,Game\n")
    with open(meta, "a") as f:
        f.write(f"{number},{n if meta_frames is None else meta_frames},{game}\n")
    return stem, frames


def assert_frames(got, expected: dict[int, np.ndarray]) -> None:
    got = list(got)
    assert len(got) == len(expected)
    for n, frame in enumerate(got, start=1):
        assert frame.shape == (210, 160, 3) and frame.dtype == np.uint8
        np.testing.assert_array_equal(frame, expected[n], err_msg=f"frame {n}")
