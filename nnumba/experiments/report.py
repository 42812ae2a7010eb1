"""One page for a whole run: `nnumba experiment run all --out DIR` writes DIR/index.html
and DIR/index.md, the slides in the lecture's order, each with the lecture's claim
quoted, what this run measured (its table and notes, from the run itself), its
figure, and the command that reproduces it.

The page is self-contained in DIR: inline style, no script, figures linked by
their file names beside it.
"""
from __future__ import annotations

import html
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from ..atomic_file import write_whole
from .registry import Experiment
from .result import Result


@dataclass
class Entry:
    """One experiment of the run: its result, the error that stopped it, or why it was
    skipped (an optional plugin it needs is not installed)."""
    experiment: Experiment
    result: Result | None
    seconds: float
    error: str | None = None
    command: str = ""
    skipped: str | None = None


def command_for(name: str, out_dir, fast: bool = False, **options) -> str:
    """The command line that runs one experiment again as this run did."""
    parts = ["nnumba", "experiment", "run", name, "--out", str(out_dir)]
    if fast:
        parts.append("--fast")
    for option, value in options.items():
        flag = "--" + option.replace("_", "-")
        parts += [flag] if value is True else [flag, str(value)]
    return " ".join(parts)


def _figures(entry: Entry, out_dir: Path) -> list[str]:
    """The figures' paths relative to the page, with '/' on every system."""
    return [Path(os.path.relpath(Path(p).resolve(), out_dir.resolve())).as_posix()
            for p in entry.result.figures]


def write_report(out_dir, entries: list[Entry], run_command: str) -> tuple[Path, Path]:
    """Write index.html and index.md into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    head = {"when": time.strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                       f"{platform.python_version()}",
            "total": sum(e.seconds for e in entries),
            "failed": [e.experiment.name for e in entries
                       if e.result is None and e.skipped is None],
            "skipped": [e.experiment.name for e in entries if e.skipped is not None],
            "command": run_command}
    html_path, md_path = out_dir / "index.html", out_dir / "index.md"
    for path, text in ((html_path, _html(entries, head, out_dir)),
                       (md_path, _markdown(entries, head, out_dir))):  # whole or not at all
        write_whole(path, lambda f, text=text: f.write(text.encode("utf-8")))
    return html_path, md_path


TITLE = "The Multi-Layer Perceptron, reproduced"
INTRO = ("François Fleuret's lecture “The Multi-Layer Perceptron” (EE-613), slide by slide, "
         "run by nnumba. Every number below comes from this run: ")
SKIPPED = "Skipped (an optional plugin is not installed): "
#: slides that are no experiment, after the experiments: (anchor, title, text, code, text)
CLOSING = (
    ("conv3d", "3-D convolutions", "“A 3d convolution can be used if the channel index has "
     "some metric meaning, such as time for a series of grayscale video frames.” nnumba's "
     "Conv3d takes such clips, (N, C, T, H, W), and is tested against SciPy and PyTorch; "
     "a layer over 2 frames and 3 pixels sees motion:",
     "nnumba.layers.Conv3d(in_channels=1, out_channels=4, kernel_size=[2, 1, 3])",
     "(nnumba's tests train it to tell which way a dot moves across the frames)."),
    # the closing slide, which needs weights no run has: a command, not an experiment
    ("alexnet", "AlexNet", "The lecture closes with AlexNet classifying a photograph, on "
     "weights trained on ImageNet, which no run here can make: export them from "
     "PyTorch (README, Quick start) and run",
     "nnumba classify IMAGE --model alexnet --weights alexnet.safetensors --size image",
     "which prints the top 15 classes as the listing does (the image at its own size)."))
STYLE = """
body { font-family: sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; }
section { border-top: 1px solid #ccc; margin-top: 2rem; padding-top: 0.5rem; }
blockquote { margin: 0.5rem 0; padding: 0.3rem 1rem; border-left: 4px solid #4a7ab5;
             background: #f2f6fb; font-style: italic; }
pre { background: #f6f6f6; padding: 0.6rem; overflow-x: auto; font-size: 0.82rem; }
code { background: #f6f6f6; padding: 0 0.2rem; }
img { max-width: 100%; border: 1px solid #ddd; }
.meta { color: #666; font-size: 0.9rem; }
.failed { color: #b00; font-weight: bold; }
.skipped { color: #8a6d00; }
nav ol { columns: 2; }
"""


def _html(entries, head, out_dir) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{e(TITLE)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             f"<h1>{e(TITLE)}</h1>",
             f"<p class=\"meta\">{INTRO}<code>{e(head['command'])}</code>, {e(head['when'])}, "
             f"on {e(head['machine'])}; {head['total']:.0f} s in all.</p>"]
    if head["failed"]:
        parts.append(f"<p class=\"failed\">Failed: {e(', '.join(head['failed']))}</p>")
    if head["skipped"]:
        parts.append(f"<p class=\"skipped\">{SKIPPED}{e(', '.join(head['skipped']))}</p>")
    parts.append("<nav><ol>")
    parts += [f'<li><a href="#{e(x.experiment.name)}">{e(x.experiment.slide)}</a> '
              f"<span class=\"meta\">({e(x.experiment.name)})</span></li>" for x in entries]
    parts.append("</ol></nav>")
    for entry in entries:
        exp, result = entry.experiment, entry.result
        parts += [f'<section id="{e(exp.name)}">', f"<h2>{e(exp.slide)}</h2>",
                  f"<p class=\"meta\">experiment <code>{e(exp.name)}</code>: {e(exp.summary)}</p>",
                  f"<blockquote>{e(exp.quote)}</blockquote>"]
        if entry.skipped is not None:
            parts.append(f"<p class=\"skipped\">skipped: {e(entry.skipped)}</p>")
        elif result is None:
            parts.append(f"<p class=\"failed\">failed: {e(entry.error or '')}</p>")
        else:
            parts += [f"<p><strong>The claim checked:</strong> {e(result.claim)}</p>",
                      f"<pre>{e(result.table)}</pre>"]
            if result.notes:
                parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in result.notes) + "</ul>")
            for src in _figures(entry, out_dir):
                parts.append(f'<p><a href="{e(src)}"><img src="{e(src)}" '
                             f'alt="{e(exp.slide)}: figure of {e(exp.name)}"></a></p>')
        parts += [f"<p class=\"meta\">reproduce: <code>{e(entry.command)}</code> "
                  f"({entry.seconds:.1f} s here)</p>", "</section>"]
    for anchor, title, before, command, after in CLOSING:
        parts += [f'<section id="{anchor}">', f"<h2>{e(title)}</h2>",
                  f"<p>{e(before)} <code>{e(command)}</code>, {e(after)}</p>", "</section>"]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _markdown(entries, head, out_dir) -> str:
    lines = [f"# {TITLE}", "", f"{INTRO}`{head['command']}`, {head['when']}, on "
             f"{head['machine']}; {head['total']:.0f} s in all.", ""]
    if head["failed"]:
        lines += [f"**Failed: {', '.join(head['failed'])}**", ""]
    if head["skipped"]:
        lines += [f"{SKIPPED}{', '.join(head['skipped'])}", ""]
    lines += [f"{i}. [{x.experiment.slide}](#{x.experiment.name}) (`{x.experiment.name}`)"
              for i, x in enumerate(entries, 1)]
    for entry in entries:
        exp, result = entry.experiment, entry.result
        lines += ["", f'<a id="{exp.name}"></a>', "", f"## {exp.slide}", "",
                  f"experiment `{exp.name}`: {exp.summary}", "", f"> {exp.quote}", ""]
        if entry.skipped is not None:
            lines += [f"skipped: {entry.skipped}", ""]
        elif result is None:
            lines += [f"**failed:** {entry.error}", ""]
        else:
            lines += [f"**The claim checked:** {result.claim}", "", "```", result.table, "```", ""]
            lines += [f"- {note}" for note in result.notes]
            if result.notes:
                lines.append("")
            lines += [f"![{exp.slide}]({src})" for src in _figures(entry, out_dir)]
            lines.append("")
        lines.append(f"reproduce: `{entry.command}` ({entry.seconds:.1f} s here)")
    for anchor, title, before, command, after in CLOSING:
        lines += ["", f'<a id="{anchor}"></a>', "", f"## {title}", "",
                  f"{before} `{command}`, {after}"]
    return "\n".join(lines) + "\n"
