"""``report.html``: the report's tables and plots, and each run's videos playable in the browser.

The page is written beside report.md from the same Markdown lines (the small subset the report
uses: headings, tables, images, lists, paragraphs), followed by one section per run linking its
files. Browsers cannot play the lossless FFV1 ``perception.mkv``, so the page shows an H.264 MP4
copy made under ``media/``; the per-trial gaze videos (``trial_<n>.mp4``) are H.264 already.
"""

from __future__ import annotations

import html
import os
import re
from fractions import Fraction
from pathlib import Path
from urllib.parse import quote

from fl_saliency.common import rundir
from fl_saliency.common.io import atomic_write

MEDIA = "media"
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\)$")
STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px}
td.num,th.num{text-align:right}img{max-width:100%;display:block;margin:.5em 0}
video{max-width:100%;height:auto;background:#000;image-rendering:pixelated}
.videos{display:flex;flex-wrap:wrap;gap:1em}figure{margin:.3em 0}.run{border-top:1px solid #ddd;padding-top:.3em}
.files a{margin-right:.8em}"""


def _inline(text: str) -> str:
    return html.escape(text)


def _table(rows: list[str]) -> list[str]:
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    align = ["num" if c.endswith(":") else "" for c in cells[1]]
    out = ["<table>", "<tr>" + "".join(f'<th class="{a}">{_inline(c)}</th>' for c, a in zip(cells[0], align)) + "</tr>"]
    out += ["<tr>" + "".join(f'<td class="{a}">{_inline(c)}</td>' for c, a in zip(row, align)) + "</tr>"
            for row in cells[2:]]
    return out + ["</table>"]


def markdown_to_html(lines: list[str]) -> list[str]:
    """The report's Markdown as HTML elements."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            out += _table(lines[i:j])
            i = j
            continue
        if line.startswith("- "):
            j = i
            while j < len(lines) and lines[j].startswith("- "):
                j += 1
            out += ["<ul>"] + [f"<li>{_inline(item[2:])}</li>" for item in lines[i:j]] + ["</ul>"]
            i = j
            continue
        heading = re.match(r"^(#{1,6}) (.*)$", line)
        image = _IMAGE.match(line)
        if heading:
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif image:
            out.append(f'<img src="{quote(image.group(2))}" alt="{html.escape(image.group(1))}">')
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return out


def browser_copy(source: Path, target: Path) -> Path:
    """An H.264 (yuv420p) MP4 copy of a video, made again only when the source is newer."""
    import av
    import numpy as np

    from fl_saliency.evaluation.perception_video import VideoWriter, read_frames

    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or Fraction(30)
    target.parent.mkdir(parents=True, exist_ok=True)
    # yuv420p halves the chroma resolution: H.264 needs even sides.
    writer = VideoWriter(target, width + width % 2, height + height % 2, "mp4", fps=round(float(rate)))
    try:
        for frame in read_frames(source):
            writer.write(np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0))))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return target


def _url(path: Path, out: Path) -> str:
    return quote(Path(os.path.relpath(path, out)).as_posix())


# Atari screens are 160 pixels wide (84 as the network sees them): shown at a whole multiple of that, sharp.
VIDEO_WIDTH = 480


def _shown_width(path: Path) -> int:
    import av

    try:
        with av.open(str(path)) as container:
            width = container.streams.video[0].codec_context.width
    except (av.FFmpegError, IndexError):  # the browser says what it cannot play
        return VIDEO_WIDTH
    return width * max(1, VIDEO_WIDTH // width)


def _video(path: Path, out: Path, caption: str) -> str:
    return (f'<figure><video controls muted preload="auto" width="{_shown_width(path)}" src="{_url(path, out)}">'
            f"</video><figcaption>{html.escape(caption)}</figcaption></figure>")


def run_section(run, out: Path, echo=print) -> list[str]:
    """One run: links to its files, its perception video (as an MP4 copy) and its per-trial gaze videos."""
    files = sorted(p for p in run.folder.iterdir() if not p.name.startswith("."))
    lines = [f'<div class="run"><h3>{html.escape(f"{run.game} · {run.network} · seed {run.seed}")}</h3>',
             '<p class="files">' + " ".join(f'<a href="{_url(p, out)}">{html.escape(p.name)}{"/" if p.is_dir() else ""}</a>'
                                            for p in files) + "</p>", '<div class="videos">']
    # A train run folder reported alone has its evaluation in eval/.
    video = rundir.perception_file("mkv")
    perception = next((f / video for f in rundir.evaluation_folders(run.folder) if (f / video).exists()),
                      None)
    if perception is not None:
        copy = out / MEDIA / run.folder.parent.name / run.folder.name / rundir.perception_file("mp4")
        import av

        try:
            lines.append(_video(browser_copy(perception, copy), out, "evaluation: what the agent sees and attends to"))
        except av.FFmpegError as exc:  # a broken video of one run is named, the page is still written
            echo(f"unreadable, shown as missing: {perception}: not a video ({type(exc).__name__}: {exc})")
            lines.append(f"<p>{html.escape(perception.name)}: unreadable</p>")
    trials = sorted(run.folder.glob(rundir.TRIAL_VIDEO_PATTERN), key=lambda p: (len(p.name), p.name))
    lines += [_video(p, out, f"Atari-HEAD {p.stem.replace('_', ' ')}: attention and gaze") for p in trials]
    return lines + ["</div></div>"]


def write_html(markdown: list[str], runs: list, out: Path, echo=print) -> Path:
    """``report.html`` in ``out``: the report's Markdown lines, then a section per run."""
    title = markdown[0].lstrip("# ") if markdown else "fl-saliency report"
    body = markdown_to_html(markdown) + ["<h2>Runs</h2>"]
    for run in runs:
        body += run_section(run, out, echo)
    page = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>", f"<style>{STYLE}</style></head><body>"] + body + ["</body></html>"]
    path = out / "report.html"
    with atomic_write(path, "w") as f:
        f.write("\n".join(page) + "\n")
    return path
