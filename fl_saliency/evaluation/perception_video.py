"""Perception videos: frames as they come, attention overlaid in a second pass, bounded memory.

docs/spec/protocol.md, section 4: one video frame per agent step, all environments tiled as Baselines'
``tile_images`` does, finished environments black; the attention of the whole recording is
divided by one common maximum, so pass 1 stores the plain frames (a lossless temporary
video) and the small grid maps (a float16 file on disk; the 84x84 maps of the other saliency
methods as float32, whose gradients float16 would round to 0), and pass 2 composes the overlay
once that maximum is known.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np
import torch

from fl_saliency.agents.attention_maps import RAW_HEIGHT, RAW_WIDTH, normalise_common_max, render_input, resize
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.agents.networks import AttentionGeometry

CODECS = {"mkv": ("ffv1", "bgr0"), "mp4": ("libx264", "yuv420p")}
INPUT_SIZE = 84  # the network input's side: maps of methods other than attention lie on it
HEAT_ALPHA = 0.6  # weight of the heat map where attention is 1; 0 attention leaves the frame as it is


def tile_images(images: np.ndarray) -> np.ndarray:
    """Baselines' tile_images: N (h, w, c) images on ceil(sqrt(N)) rows of ceil(N / rows) columns, zero padded."""
    n, h, w, c = images.shape
    rows = int(math.ceil(math.sqrt(n)))
    cols = int(math.ceil(n / rows))
    padded = np.zeros((rows * cols, h, w, c), images.dtype)
    padded[:n] = images
    return padded.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def heat_overlay(frames: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Blend a JET heat map of ``maps`` in [0, 1] (B, h, w) over RGB ``frames`` (B, h, w, 3), weighted by the map."""
    out = np.empty_like(frames)
    for i, (frame, m) in enumerate(zip(frames, maps)):
        m = np.clip(m, 0.0, 1.0)
        heat = cv2.cvtColor(cv2.applyColorMap((m * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
        alpha = (HEAT_ALPHA * m)[..., None]
        out[i] = (frame * (1.0 - alpha) + heat * alpha).round().astype(np.uint8)
    return out


class VideoWriter:
    """Encode RGB uint8 frames with PyAV; the file appears under its name only once closed."""

    def __init__(self, path: str | os.PathLike, width: int, height: int, fmt: str = "mkv", fps: int = 30):
        if fmt not in CODECS:
            raise FlSaliencyError(f"unknown video format {fmt!r}; choose one of: {', '.join(CODECS)}")
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp{self.path.suffix}")
        codec, pix_fmt = CODECS[fmt]
        self.container = av.open(str(self.tmp), mode="w")
        self.stream = self.container.add_stream(codec, rate=fps)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, pix_fmt
        if fmt == "mp4":
            self.stream.options = {"crf": "18"}
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the unfinished file; closing may fail again (a full disk), the file goes regardless."""
        with contextlib.suppress(Exception):
            self.container.close()
        self.tmp.unlink(missing_ok=True)


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode a video frame by frame as RGB uint8 arrays."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


class PerceptionRecorder:
    """Collects one tiled frame per agent step and writes ``perception.<fmt>`` on ``finish``.

    ``envs`` picks the environments shown (all by default, tiled); each tile is the raw screen
    (``raw``), the newest processed frame upscaled to the raw width (``processed``), or both
    stacked, raw on top. ``geometry`` places grid attention maps on the 84x84 input; None takes
    maps already on it (any saliency method's).
    """

    def __init__(self, path: Path, geometry: AttentionGeometry | None, envs: list[int], raw: bool, processed: bool,
                 fmt: str = "mkv"):
        if not (raw or processed):
            raise ValueError("a perception video needs raw or processed observations")
        self.path, self.geometry, self.envs = path, geometry, envs
        self.raw, self.processed, self.fmt = raw, processed, fmt
        self.tile_height = (RAW_HEIGHT if raw else 0) + (RAW_WIDTH if processed else 0)
        self.workdir = tempfile.TemporaryDirectory(dir=path.parent, prefix=".perception.", suffix=".tmp")
        self.maps_dtype = np.float16 if geometry is not None else np.float32
        self.maps_file = open(Path(self.workdir.name) / "maps.f16", "wb")
        self.maximum = 0.0
        grid = geometry.grid if geometry is not None else INPUT_SIZE
        self.map_shape = (len(envs), grid, grid)
        sample = tile_images(np.zeros((len(envs), self.tile_height, RAW_WIDTH, 3), np.uint8))
        self.frames = VideoWriter(Path(self.workdir.name) / "frames.mkv", sample.shape[1], sample.shape[0], "mkv")

    def add(self, attention: torch.Tensor, obs: np.ndarray, rgb: np.ndarray | None, finished: np.ndarray) -> None:
        """One step: maps (N, g, g) on the grid (N, 84, 84 without a geometry), stacked obs (N, 4, 84, 84),
        screens (N, 210, 160, 3), finished mask (N,)."""
        shown = self.envs
        every = attention.float().cpu()
        every[torch.from_numpy(finished)] = 0.0
        # The original's common maximum runs over every environment, shown or not.
        self.maximum = max(self.maximum, float(self._render(every).max()))
        self.maps_file.write(every[shown].numpy().astype(self.maps_dtype).tobytes())

        tiles = np.zeros((len(shown), self.tile_height, RAW_WIDTH, 3), np.uint8)
        if self.raw:
            tiles[:, :RAW_HEIGHT] = rgb[shown]
        if self.processed:
            newest = torch.from_numpy(obs[shown, -1]).float()
            upscaled = resize(newest, RAW_WIDTH, RAW_WIDTH).round().clamp(0, 255).to(torch.uint8).numpy()
            tiles[:, self.tile_height - RAW_WIDTH :] = upscaled[..., None]
        tiles[finished[shown]] = 0
        self.frames.write(tile_images(tiles))

    def finish(self) -> Path:
        """Pass 2: overlay the attention, divided by the recording's maximum, and write the video.

        On any failure (a full disk) nothing is left: neither the video nor the temporary files.
        """
        writer = None
        try:
            self.frames.close()
            self.maps_file.close()
            maps_all = np.memmap(self.maps_file.name, dtype=self.maps_dtype, mode="r").reshape(-1, *self.map_shape)
            first = next(read_frames(self.frames.path), None)
            height, width = (first.shape[:2] if first is not None else (self.tile_height, RAW_WIDTH))
            writer = VideoWriter(self.path, width, height, self.fmt)
            for step, tiled in enumerate(read_frames(self.frames.path)):
                rendered = normalise_common_max(self._render(torch.from_numpy(maps_all[step].astype(np.float32))),
                                                self.maximum)
                writer.write(tile_images(self._overlay(self._untile(tiled), rendered)))
            writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            self.abort()
            raise
        self.workdir.cleanup()
        return self.path

    def abort(self) -> None:
        """Remove everything the recording wrote so far; safe to call after a failure of any step."""
        self.frames.abort()
        with contextlib.suppress(OSError):  # flushing the rest of the maps fails again on a full disk
            self.maps_file.close()
        self.workdir.cleanup()

    def _render(self, maps: torch.Tensor) -> torch.Tensor:
        """Maps on the 84x84 input: grid attention spread over its receptive fields, other maps as they are
        (clamped at 0, as rendered attention is: the heat map shows positive saliency)."""
        return render_input(maps, self.geometry) if self.geometry is not None else maps.clamp_min(0.0)

    def _untile(self, tiled: np.ndarray) -> np.ndarray:
        n = len(self.envs)
        rows = int(math.ceil(math.sqrt(n)))
        cols = int(math.ceil(n / rows))
        h, w = self.tile_height, RAW_WIDTH
        return tiled.reshape(rows, h, cols, w, 3).transpose(0, 2, 1, 3, 4).reshape(rows * cols, h, w, 3)[:n]

    def _overlay(self, tiles: np.ndarray, rendered: torch.Tensor) -> np.ndarray:
        out = tiles.copy()
        if self.raw:
            raw_maps = resize(rendered, RAW_HEIGHT, RAW_WIDTH).numpy()
            out[:, :RAW_HEIGHT] = heat_overlay(tiles[:, :RAW_HEIGHT], raw_maps)
        if self.processed:
            processed_maps = resize(rendered, RAW_WIDTH, RAW_WIDTH).numpy()
            out[:, self.tile_height - RAW_WIDTH :] = heat_overlay(tiles[:, self.tile_height - RAW_WIDTH :], processed_maps)
        return out
