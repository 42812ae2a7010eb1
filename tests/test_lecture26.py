"""Lecture review 26 (the first half, slide by slide): perceptron-bound's --fast table
agrees with "the larger the margin, the more quickly", xor's --fast figure draws the raw
perceptron's boundary, xor needs only two layers of threshold units, and the run-all page
has the 3-D convolution sentence."""
import inspect
import itertools

import numpy as np
import pytest


# ---- W1: perceptron-bound --fast contradicts "the larger the margin, the more quickly" -----
def test_perceptron_bound_fast_table_needs_fewer_updates_for_larger_margins():
    """The slide: 'the larger the margin, the more quickly the algorithm classifies all the
    samples correctly'. Reference: the closed-form bound 4 R^2 / gamma^2 falls with gamma,
    and the full run (200 points, 5 seeds) has mean k 94.0 > 67.6 > 41.2 > 19.2 > 8.8 > 4.4.
    At HEAD the --fast table (100 points, 3 seeds) has mean k 38.7 at gamma 0.02 and 44.7 at
    0.05 (max 48 and 64): its first two rows say the opposite."""
    from nnumba.experiments import bound
    result = bound.run(fast=True)
    runs = result.numbers["runs"]
    margins = sorted({r["gamma"] for r in runs})
    # the reference: the closed-form bound falls as gamma grows, at the data sets' R
    radius = max(r["R"] for r in runs)
    assert all(4 * radius ** 2 / a ** 2 > 4 * radius ** 2 / b ** 2
               for a, b in zip(margins, margins[1:]))
    means = [np.mean([r["updates"] for r in runs if r["gamma"] == g]) for g in margins]
    assert all(a >= b for a, b in zip(means, means[1:])), dict(zip(margins, means))


# ---- W2: the xor figure's raw panel, in --fast, has no boundary to show --------------------
def test_xor_fast_raw_panel_draws_a_boundary_inside_the_plotted_square():
    """The left panel ('no line separates xor') shades raw.decision over [-0.5, 1.5]^2.
    At HEAD (--fast) the last iterate is w = (0.017, -0.120), b = 2: its line x_v ~ 16.7
    lies far outside, every point of the panel is +1 (45 % error = the share of -1 labels),
    and no line is drawn. Reference: numpy's sign of w.x + b on the panel's grid."""
    pytest.importorskip("nnumba_features", reason="xor's Phi is the nnumba-features plugin's")
    from nnumba.experiments import xor
    from nnumba.train import train_perceptron
    fast = xor.run(fast=True).numbers
    assert fast == xor.run(fast=False).numbers  # --fast runs the whole (one second)
    x, y = xor.xor_data(per_corner=50)  # the set both draw
    fit = train_perceptron(x, y, max_epochs=100)
    g = np.linspace(-0.5, 1.5, 201)
    grid = np.array(list(itertools.product(g, g)))
    signs = np.sign(grid @ np.asarray(fit.w) + fit.b)
    assert (signs > 0).any() and (signs < 0).any(), (fit.w, fit.b)


# ---- W3: threshold.xor's docstring: "xor ... takes three layers" --------------------------
def test_xor_needs_only_two_layers_of_the_lectures_units():
    """Reference: nand(u, v) = 1{-(u + v) + 1.5 >= 0} is a unit of the slide's form
    (one weight w = -1, b = 1.5), and xor = and(or(u, v), nand(u, v)): two layers, three
    units, computed here with the engine's Linear + Threshold. threshold.xor's docstring
    says xor 'takes three layers'."""
    from nnumba.experiments import threshold
    from nnumba.layers import Linear, Threshold
    from nnumba.model import Sequential

    def unit(w, b):
        lin = Linear(2, 1)
        lin.weight.value[...] = w
        lin.bias.value[...] = b
        return Sequential(lin, Threshold())

    u, v = (np.array(c) for c in zip(*itertools.product((0, 1), repeat=2)))
    fire = threshold.fire
    first = np.column_stack([fire(unit(1, -0.5), u, v), fire(unit(-1, 1.5), u, v)])
    out = fire(unit(1, -1.5), first[:, 0], first[:, 1])
    np.testing.assert_array_equal(out, u ^ v)  # two layers suffice
    assert "takes three layers" not in (inspect.getdoc(threshold.xor) or "")


# ---- G (testable): the run-all page has no Conv3d slide, though the README's table does ----
def test_run_all_page_points_to_the_3d_convolution_sentence(tmp_path):
    """README's lecture table has a row for 'a 3d convolution can be used if the channel
    index has some metric meaning' (Conv3d, tests/test_conv3d.py); the index page that the
    README tells a student to open 'for each slide' has none (it has the AlexNet one)."""
    from pathlib import Path
    import nnumba
    readme = Path(nnumba.__file__).resolve().parents[1] / "README.md"
    assert "Conv3d" in readme.read_text(encoding="utf-8")  # the reference: README's row
    from nnumba.experiments.report import write_report
    html_path, md_path = write_report(tmp_path, [], "nnumba experiment run all")
    assert "Conv3d" in md_path.read_text(encoding="utf-8")
    assert "Conv3d" in html_path.read_text(encoding="utf-8")
