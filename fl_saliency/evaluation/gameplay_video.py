"""Plain gameplay MP4s of an evaluation, as ``run_baselines.py --video-recorder`` records them.

The original wraps its evaluation environments in Baselines' ``VecVideoRecorder`` with
``record_video_trigger=lambda _: True`` and ``video_length=max_eplen`` into ``<output>/videos``:
a recording starts at reset with the screens of every environment tiled (``VecEnv.render``:
``tile_images`` of the raw 210x160 screens, finished environments still playing), takes one
frame after every step, and closes after ``video_length + 1`` frames; the next step starts the
next file, so every frame is in exactly one file. Files are named by the step that starts them,
``vecenv.video.<pid>.video<step:06>.mp4`` (H.264, yuv420p, 30 fps, as gym 0.10's
``ImageEncoder``), each with gym's ``.meta.json`` beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from fl_saliency.common.io import atomic_write_json
from fl_saliency.evaluation.perception_video import VideoWriter, tile_images

FPS = 30  # gym's VideoRecorder default: VecEnv.metadata has no video.frames_per_second


class GameplayRecorder:
    """Baselines' ``VecVideoRecorder`` over the screens (N, 210, 160, 3) given at reset and after each step."""

    def __init__(self, directory: Path, video_length: int | None):
        self.directory = directory
        self.video_length = video_length  # None: one file for the whole evaluation
        self.prefix = f"vecenv.video.{os.getpid()}.video"
        self.step_id = 0
        self.started_at = 0  # the step the file being recorded started at
        self.writer: VideoWriter | None = None
        self.recorded = 0
        self.paths: list[Path] = []

    def reset(self, screens: np.ndarray) -> None:
        self._start(screens)

    def step(self, screens: np.ndarray) -> None:
        self.step_id += 1
        if self.writer is None:
            self._start(screens)
            return
        self.writer.write(tile_images(screens))
        self.recorded += 1
        if self.video_length is not None and self.recorded > self.video_length:
            self.close()

    def close(self) -> list[Path]:
        """Finish the file being recorded; returns every file written."""
        if self.writer is not None:
            self.writer.close()
            atomic_write_json({"step_id": self.started_at, "content_type": "video/mp4",
                               "encoder_version": {"backend": "pyav", "version": av.__version__, "codec": "libx264"}},
                              self.writer.path.with_suffix(".meta.json"))
            self.paths.append(self.writer.path)
            self.writer = None
        return self.paths

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None

    def _start(self, screens: np.ndarray) -> None:
        self.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        frame = tile_images(screens)
        self.started_at = self.step_id
        path = self.directory / f"{self.prefix}{self.step_id:06}.mp4"
        self.writer = VideoWriter(path, frame.shape[1], frame.shape[0], "mp4", fps=FPS)
        self.writer.write(frame)
        self.recorded = 1
