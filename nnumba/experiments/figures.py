"""Figures for the experiments. matplotlib is an optional extra: imported only
when a figure is drawn, and without it the tables still print and the notes
say how to get the figures."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic_file import write_whole
from .result import Result

PLOTS_HINT = 'the figures need matplotlib: pip install "nnumba[plots]"'

# Colours for the labels -1 and +1, the same in every figure.
NEGATIVE, POSITIVE = "tab:blue", "tab:red"


def figure_class():
    """matplotlib's Figure, or None when matplotlib is not installed.

    Figures are drawn with the object API, not pyplot: no backend is chosen,
    no window opened, and a notebook's own pyplot set-up is left alone."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


def with_figure(result: Result, out_dir, painter, *args, title: str, nrows: int = 1,
                ncols: int = 1, size=(6.4, 4.8)) -> Result:
    """``result`` with its figure, ``NAME.png`` (the experiment's name), drawn into
    ``out_dir`` by ``painter(axes, *args)`` (axes: a flat list); ``title``, above every
    panel, names the lecture's slide. Without out_dir or matplotlib, a note says so."""
    filename = f"{result.name}.png"
    out_dir = None if out_dir is None else Path(out_dir)
    if out_dir is None:
        result.notes.append(f"figure {filename} not written: give out_dir "
                            f"(--out DIR on the command line)")
    elif (figure := figure_class()) is None:
        result.notes.append(PLOTS_HINT)
    else:
        fig = figure(figsize=size, layout="constrained")
        axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
        painter(axes, *args)
        for ax in axes:  # a grid's spare panels, left empty by the painter
            if not ax.has_data():
                ax.axis("off")
        fig.suptitle(title, fontsize=12)
        check_figure_path(out_dir / filename)
        out_dir.mkdir(parents=True, exist_ok=True)
        # whole or not at all: a Ctrl-C mid-write left a truncated figure under its name
        write_whole(out_dir / filename, lambda f: fig.savefig(
            f, format="png", dpi=110, bbox_inches="tight", metadata={"Source": MARK}))
        result.figures.append(out_dir / filename)
    return result


#: what every figure carries in its PNG text (key "Source"): an earlier run's
#: figure is replaced, a file of the same name that is not one is refused
MARK = "nnumba experiment"


def check_figure_path(path):
    """ValueError where writing the figure ``path`` would lose something: a folder of
    that name, a symbolic link (the write would land in the file it points to), or a
    file that is not a figure of an earlier run (a user's own, with --out .)."""
    path = Path(path)
    why = "is a folder" if path.is_dir() and not path.is_symlink() else \
        "is a symbolic link, which the figure would be written through" \
        if path.is_symlink() else None
    if why is None and path.exists():
        try:
            with open(path, "rb") as f:
                head = f.read(1 << 16)
        except OSError:
            head = b""
        if not head.startswith(b"\x89PNG") or f"Source\0{MARK}".encode() not in head:
            why = "exists and carries no mark of a figure nnumba drew (older nnumba drew none)"
    if why:
        raise ValueError(f"{path}: the figure of that name {why}; refusing to replace it "
                         f"(move it, or choose another folder for --out)")


def finish(ax, title=None, /, legend=8, loc=None, grid=None, **props):
    """A panel in the figures' common style: ``props`` set on it (labels, scales,
    limits; a ``title=`` among them keeps the default size), ``title`` at 10 points, a
    legend at ``legend`` points (None: no legend) placed at ``loc``, and a light grid
    on the ``grid`` ticks ("major" or "both")."""
    ax.set(**props)
    if title is not None:
        ax.set_title(title, fontsize=10)
    if legend is not None:
        ax.legend(fontsize=legend, loc=loc)
    if grid is not None:
        ax.grid(True, which=grid, alpha=0.3)


def label_scatter(ax, x, y, s: float = 18):
    """Points of a 2-D set coloured by their label in {-1, +1}, with a legend entry each."""
    for value, colour, name in ((-1, NEGATIVE, "y = -1"), (1, POSITIVE, "y = +1")):
        keep = y == value
        ax.scatter(x[keep, 0], x[keep, 1], s=s, c=colour,
                   edgecolors="k", linewidths=0.4, label=name, zorder=3)


def decision_regions(ax, decide, xlim, ylim, steps: int = 300):
    """Shade where ``decide(points)`` (a score) is >= 0 and draw its zero level."""
    gx, gy = np.meshgrid(np.linspace(*xlim, steps), np.linspace(*ylim, steps))
    score = decide(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    ax.contourf(gx, gy, score >= 0, levels=[-0.5, 0.5, 1.5], colors=[NEGATIVE, POSITIVE],
                alpha=0.15)
    if score.min() < 0 <= score.max():
        ax.contour(gx, gy, score, levels=[0], colors="k", linewidths=1.2)
    ax.set(xlim=xlim, ylim=ylim)


def figure_problems(fig) -> list[str]:
    """What a reader would miss in ``fig``: a panel without axis labels, several
    labelled curves without a legend, no title. (The tests run it on every figure.)"""
    problems = [] if fig.get_suptitle() else ["no title"]
    # Small multiples may share one legend: a curve named in any legend is explained.
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    explained = {text.get_text() for legend in legends for text in legend.get_texts()}
    for i, ax in enumerate(fig.axes):
        if not ax.axison or ax.get_label() == "<colorbar>":
            continue
        name = f"panel {i} ({ax.get_title()!r})"
        if not ax.get_xlabel() or not ax.get_ylabel():
            problems.append(f"{name}: an axis without a label")
        unexplained = set(ax.get_legend_handles_labels()[1]) - explained
        if len(ax.get_legend_handles_labels()[1]) >= 2 and unexplained:
            problems.append(f"{name}: curves {sorted(unexplained)} in no legend")
    return problems


def network(ax, widths, weights=None, inputs=None, outputs=None, edge_labels=None):
    """A layered network as a graph of units: ``widths`` units per column, an edge
    from every unit to every unit of the next column, coloured by the sign of its
    weight in ``weights`` (one (out, in) array per layer; None: grey) and as dark as
    its size; ``inputs`` / ``outputs`` label the first and last columns, and
    ``edge_labels`` (one layer of one unit) its edges."""
    tallest = max(widths)
    heights = [np.linspace(1, -1, n) * (n - 1) / max(tallest - 1, 1) if n > 1 else np.zeros(1)
               for n in widths]  # the first unit of a column on top
    for layer, (left, right) in enumerate(zip(heights, heights[1:])):
        w = None if weights is None else np.asarray(weights[layer])
        top = 1.0 if w is None else max(float(np.abs(w).max()), 1e-300)
        for i, yr in enumerate(right):
            for j, yl in enumerate(left):
                value = 0.0 if w is None else float(w[i, j])
                colour = "0.5" if w is None else POSITIVE if value > 0 else NEGATIVE
                ax.plot([layer, layer + 1], [yl, yr], color=colour, zorder=1,
                        lw=0.4 + 1.6 * abs(value) / top if w is not None else 1.0,
                        alpha=0.25 + 0.75 * abs(value) / top if w is not None else 0.8)
                if edge_labels is not None:
                    ax.annotate(edge_labels[j], ((2 * layer + 1) / 3, (2 * yl + yr) / 3),
                                fontsize=10, ha="center", va="bottom", color="k")
    for column, ys in enumerate(heights):
        ax.scatter(np.full(len(ys), column), ys, s=max(30, 600 / tallest), c="w",
                   edgecolors="k", zorder=3)
    for labels, column, side in ((inputs, 0, "right"), (outputs, len(widths) - 1, "left")):
        for text, y in zip(labels or (), heights[column]):
            ax.annotate(text, (column, y), textcoords="offset points", fontsize=10,
                        xytext=(-12 if side == "right" else 12, 0), ha=side, va="center")
    ax.set(xlim=(-0.6, len(widths) - 0.4), ylim=(-1.25, 1.25))
    ax.axis("off")
