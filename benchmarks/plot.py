"""``--bench-plot FILE.png``: the suite's ratios as one bar chart, each job's bar
beside the target its issue set (docs/speed-reports/speed-report*.md hold the runs' tables)."""
from __future__ import annotations

#: the ratio (nnumba / peer) each job should reach; side effects: within 5 %
TARGETS = {"cnn-epoch": 0.5, "mlp-epoch": 0.6, "perceptron-0v1": 0.5,
           "alexnet-infer-b1": 1.0, "alexnet-infer-b16": 0.8}
SIDE_EFFECT_LIMIT = 1.05


def target(group: str) -> float | None:
    if group in TARGETS:
        return TARGETS[group]
    return SIDE_EFFECT_LIMIT if " / alone" in group else None


def color(ratio: float, goal: float | None) -> str:
    """Green where a job meets its target, red where it misses, grey without one (the
    per-layer profiles: what the profile sums to, not a job with a target)."""
    if goal is None:
        return "tab:grey"
    return "tab:red" if ratio > goal else "tab:green"


def plot_ratios(rows: list[dict], path, title: str) -> str | None:
    """Draw ``rows`` (conftest's: group, ratio, peer) into ``path``; returns why not
    where it cannot (no matplotlib)."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no backend or window chosen
    except ImportError:
        return 'no plot: it needs matplotlib (pip install "nnumba[plots]")'
    rows = rows[::-1]  # the first job on top
    fig = Figure(figsize=(9, 0.42 * len(rows) + 1.5), layout="constrained")
    ax = fig.add_subplot()
    y = range(len(rows))
    goals = [target(r["group"]) for r in rows]
    ax.barh(y, [r["ratio"] for r in rows], height=0.6,
            color=[color(r["ratio"], g) for r, g in zip(rows, goals)])
    for i, (row, goal) in enumerate(zip(rows, goals)):
        if goal is not None:
            ax.plot([goal, goal], [i - 0.42, i + 0.42], color="black", linewidth=2.5,
                    label="target" if i == goals.index(goal) else None)
        ax.text(max(row["ratio"], goal or 0) + 0.02, i, f"{row['ratio']:.2f}×", va="center",
                fontsize=8)
    ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.set_yticks(list(y), [f"{r['group'].replace(' / alone', '')} (vs {r['peer']})"
                            for r in rows], fontsize=8)
    ax.set_xlabel("nnumba time / peer time: ratio of medians, lower is better")
    ax.set_xlim(0, max(1.25, max(r["ratio"] for r in rows) * 1.15))
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[:1], labels[:1], loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=110)
    return None
