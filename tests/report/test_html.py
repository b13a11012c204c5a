"""report.html: the page's files, its H.264 copies, and the page in a real headless Chromium (Debian's package)."""

import json
import shutil

import av
import numpy as np
import pytest

from fl_saliency.report.markdown import write_report
from fl_saliency.report.html import MEDIA, markdown_to_html
from fl_saliency.evaluation.perception_video import read_frames
from helpers import write_video

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FRAMES = 12


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A sweep of 2 runs, one with an FFV1 perception video and two per-trial gaze videos, and its report."""
    root = tmp_path_factory.mktemp("sweep")
    for seed in ("01", "02"):
        folder = root / "Breakout.cnn_sparse_fls" / seed
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps({"rewards": [3.0, 5.0]}))
    run = root / "Breakout.cnn_sparse_fls" / "01"
    frames = write_video(run / "perception.mkv", "mkv")
    for trial in (101, 102):
        write_video(run / f"trial_{trial}.mp4", "mp4")
    write_report(root, echo=lambda line: pytest.fail(line))
    return root, frames


def test_perception_video_gets_an_h264_copy_with_the_same_frames(report):
    root, frames = report
    copy = root / MEDIA / "Breakout.cnn_sparse_fls" / "01" / "perception.mp4"
    with av.open(str(copy)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert float(stream.average_rate) == 15
    decoded = np.stack(list(read_frames(copy)))
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 3  # lossy, but the same pictures
    with av.open(str(root / "Breakout.cnn_sparse_fls" / "01" / "perception.mkv")) as container:
        assert container.streams.video[0].codec_context.name == "ffv1"  # the lossless original stays


def test_page_links_every_file_of_each_run(report):
    root, _ = report
    page = (root / "report.html").read_text()
    for name in ("perception.mkv", "results.json", "trial_101.mp4", "trial_102.mp4"):
        assert f'href="Breakout.cnn_sparse_fls/01/{name}"' in page
    assert 'href="Breakout.cnn_sparse_fls/02/results.json"' in page
    assert page.count("<video") == 3 and f'src="{MEDIA}/Breakout.cnn_sparse_fls/01/perception.mp4"' in page


def test_unreadable_perception_video_is_named_in_one_line_and_the_page_written(tmp_path):
    folder = tmp_path / "Breakout.cnn" / "01"
    folder.mkdir(parents=True)
    (folder / "perception.mkv").write_bytes(b"not a video at all")
    lines = []
    write_report(tmp_path, echo=lines.append)
    assert len(lines) == 1 and lines[0].startswith("unreadable, shown as missing: ") and "perception.mkv" in lines[0]
    page = (tmp_path / "report.html").read_text()
    assert "<p>perception.mkv: unreadable</p>" in page and "<video" not in page
    assert not (tmp_path / MEDIA / "Breakout.cnn" / "01" / "perception.mp4").exists()


def test_markdown_subset_as_html():
    assert markdown_to_html(["# a <b>", "", "| x | y |", "|---|---:|", "| 1 | 2 |", "![plot](p q.png)", "- one",
                             "text"]) == [
        "<h1>a &lt;b&gt;</h1>", "<table>", '<tr><th class="">x</th><th class="num">y</th></tr>',
        '<tr><td class="">1</td><td class="num">2</td></tr>', "</table>", '<img src="p%20q.png" alt="plot">',
        "<ul>", "<li>one</li>", "</ul>", "<p>text</p>"]


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on the PATH (Debian: apt-get install chromium; "
                                             "CI installs it in .ci/run)")
def test_page_in_headless_chromium(report):
    """No console error, every image decoded, every video playable (H.264 in Debian's chromium); a screenshot."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    root, _ = report
    problems = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url}"))
            page.goto((root / "report.html").resolve().as_uri(), wait_until="load")
            images = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth, i.naturalHeight])")
            page.wait_for_function("Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 2 || v.error)",
                                   timeout=30_000)
            videos = page.evaluate("Array.from(document.querySelectorAll('video')).map(v => "
                                   "[v.getAttribute('src'), v.readyState, v.error && v.error.code, v.videoWidth, v.duration, "
                                   "v.clientWidth, getComputedStyle(v).imageRendering])")
            page.screenshot(path=str(root / "report_screenshot.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert {src for src, _, _ in images} >= {"aggregates.png", "performance_profiles.png"}
    assert all(w > 0 and h > 0 for _, w, h in images), images
    assert len(videos) == 3
    for src, ready, error, width, duration, shown, rendering in videos:
        assert error is None and ready >= 2 and width == 160, (src, ready, error, width)
        assert shown == 3 * 160 and rendering == "pixelated", (src, shown, rendering)  # readable, sharp pixels
        assert duration == pytest.approx(FRAMES / 15, abs=0.1)
    from PIL import Image

    assert Image.open(root / "report_screenshot.png").size[0] == 1100


def test_a_single_train_runs_page_shows_its_evaluation_video(tmp_path):
    run = tmp_path / "run"  # train's folder, evaluated into eval/ (evaluate's default)
    (run / "eval").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"network": "cnn_sparse_fls", "env_name": "BreakoutNoFrameskip-v4"}))
    (run / "eval" / "results.json").write_text(json.dumps({"rewards": [3.0]}))
    write_video(run / "eval" / "perception.mkv", "mkv")
    write_report(run, echo=lambda line: pytest.fail(line))
    page = (run / "report.html").read_text()
    assert page.count("<video") == 1 and f'width="480" src="{MEDIA}/{tmp_path.name}/run/perception.mp4"' in page
    assert len(list(read_frames(run / MEDIA / tmp_path.name / "run" / "perception.mp4"))) == FRAMES
