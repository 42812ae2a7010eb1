"""The 1-D convolution as a differential operator and as a crude template matcher.

The engine's Conv1d (a cross-correlation, as deep learning means it: the kernel
is not flipped) runs with kernels set by hand. The lecture's example is exact:
(0, 0, 0, 0, 1, 2, 3, 4, 4, 4, 4) (x) (-1, 1) = (0, 0, 0, 1, 1, 1, 1, 0, 0, 0).
On a sampled sin the same kernel over h is the derivative, and (1, -2, 1) / h^2
the second derivative, within the Taylor bounds. With a template as kernel the
output peaks where the template is.
"""
import numpy as np

from ..layers.conv import Conv1d
from .common import Result, experiment, format_table, vector, with_figure

RAMP = np.array([0, 0, 0, 0, 1, 2, 3, 4, 4, 4, 4], dtype=np.float64)
DIFFERENCE = np.array([-1, 1], dtype=np.float64)
RAMP_DIFFERENCE = np.array([0, 0, 0, 1, 1, 1, 1, 0, 0, 0], dtype=np.float64)  # the lecture's
TEMPLATE = np.array([2, 3, 2, 0, -2, -3, -2], dtype=np.float64)  # one period of a wave
TEMPLATE_AT = (6, 44)
STEP = 0.1  # h, the sampling step of sin


def convolve(signal, kernel) -> np.ndarray:
    """signal (x) kernel by the engine: a Conv1d(1, 1, len(kernel)) without bias, float64."""
    layer = Conv1d(1, 1, len(kernel), bias=False).astype(np.float64)
    layer.weight.value[0, 0] = kernel
    x = np.ascontiguousarray(signal, dtype=np.float64).reshape(1, 1, -1)
    return layer.forward(x)[0, 0].copy()


def template_signal(seed: int = 0):
    """A noisy signal holding the template at TEMPLATE_AT, and two decoys: a bright
    plateau and the template upside down."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.2, 64)
    for at in TEMPLATE_AT:
        x[at:at + len(TEMPLATE)] += TEMPLATE
    x[18:28] += 3.0
    x[32:32 + len(TEMPLATE)] -= TEMPLATE
    return x


def matcher_kernel():
    """The template minus its mean: a flat region, however bright, then gives 0."""
    return TEMPLATE - TEMPLATE.mean()


@experiment("conv1d-operators",
            "the 1-D convolution as a differential operator (the lecture's ramp, exactly; "
            "derivatives of sin) and as a template matcher",
            slide="Convolution layers",
            quote="(0, 0, 0, 0, 1, 2, 3, 4, 4, 4, 4) ⊗ (−1, 1) = (0, 0, 0, 1, 1, 1, 1, 0, 0, 0)")
def run(out_dir=None, fast=False) -> Result:
    ramp_out = convolve(RAMP, DIFFERENCE)
    grid = np.arange(0, 2 * np.pi + STEP / 2, STEP)
    first = convolve(np.sin(grid), DIFFERENCE / STEP)            # at the midpoints
    second = convolve(np.sin(grid), np.array([1.0, -2.0, 1.0]) / STEP ** 2)  # at the inner points
    first_error = float(np.max(np.abs(first - np.cos(grid[:-1] + STEP / 2))))
    second_error = float(np.max(np.abs(second - (-np.sin(grid[1:-1])))))
    signal = template_signal()
    response = convolve(signal, matcher_kernel())
    found = sorted(int(i) for i in _peaks(response, len(TEMPLATE_AT), len(TEMPLATE)))
    rows = [["(-1, 1) on the lecture's ramp", "(0, 0, 0, 1, 1, 1, 1, 0, 0, 0)",
             f"max |diff| = {np.max(np.abs(ramp_out - RAMP_DIFFERENCE)):g}", "exact"],
            [f"(-1, 1) / h on sin, h = {STEP}", "cos at the midpoints",
             f"max error {first_error:.2e}", f"h^2/24 = {STEP ** 2 / 24:.2e}"],
            [f"(1, -2, 1) / h^2 on sin, h = {STEP}", "-sin", f"max error {second_error:.2e}",
             f"h^2/12 = {STEP ** 2 / 12:.2e}"],
            ["template (minus its mean)", f"template at {list(TEMPLATE_AT)}",
             f"two highest peaks at {found}", "plateau and inverted decoys"]]
    table = format_table(["kernel", "should give", "engine's Conv1d", "bound"], rows)
    table += (f"\n{vector(RAMP)} (x) (-1, 1) = {vector(ramp_out)}\n(x) is the lecture's and "
              f"the layers' cross-correlation, sum_k w[k] x[i+k]: np.convolve, which flips "
              f"the kernel, gives the negative here")
    numbers = {"ramp_output": ramp_out.tolist(), "first_derivative_error": first_error,
               "second_derivative_error": second_error, "step": STEP,
               "template_at": list(TEMPLATE_AT), "peaks_found": found,
               "response": response.tolist()}
    result = Result("conv1d-operators",
                    "a convolution can implement a differential operator or a template matcher, "
                    "both invariant by translation", table, numbers)
    return with_figure(result, out_dir, _draw, ramp_out, grid, first, signal, response, found,
                       ncols=3, size=(16, 4.6),
                       title="Convolution layers: the 1-D convolution as a differential "
                             "operator and as a template matcher")


def _peaks(response, count: int, width: int):
    """Positions of the ``count`` highest responses at least ``width`` apart."""
    found = []
    for i in np.argsort(response)[::-1]:
        if all(abs(i - j) >= width for j in found):
            found.append(i)
        if len(found) == count:
            break
    return found


def _draw(axes, ramp_out, grid, first, signal, response, found):
    ax = axes[0]
    ax.stem(np.arange(len(RAMP)), RAMP, linefmt="C0-", markerfmt="C0o", basefmt=" ",
            label="x = (0,0,0,0,1,2,3,4,4,4,4)")
    ax.stem(np.arange(len(ramp_out)) + 0.5, ramp_out, linefmt="C3-", markerfmt="C3s",
            basefmt=" ", label="x ⊗ (−1, 1)")
    ax.set(xlabel="index (output drawn between its two inputs)", ylabel="value",
           title="(−1, 1) as a differential operator:\nthe lecture's example, exactly")
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[1]
    ax.plot(grid, np.sin(grid), color="C0", label="sin x (sampled, h = 0.1)")
    ax.plot(grid[:-1] + STEP / 2, first, ".", color="C3", ms=4, label="sin ⊗ (−1, 1) / h")
    ax.plot(grid, np.cos(grid), color="0.5", lw=1, ls="--", label="cos x")
    ax.set(xlabel="x", ylabel="value", title="On a smooth signal: the derivative")
    ax.legend(fontsize=8, loc="lower left")
    ax = axes[2]
    # Output i is the kernel laid on inputs i .. i + k - 1: drawn at the window's centre,
    # it peaks in the middle of the place the template is found.
    centre = np.arange(len(response)) + (len(TEMPLATE) - 1) / 2
    ax.plot(signal, color="C0", lw=1, label="signal")
    ax.plot(centre, response / np.abs(response).max() * 3, color="C3", lw=1.3,
            label="response (scaled), at the window's centre")
    for i, at in enumerate(TEMPLATE_AT):
        ax.axvspan(at, at + len(TEMPLATE) - 1, color="C2", alpha=0.15,
                   label="template's true places" if i == 0 else None)
    ax.plot(centre[found], response[found] / np.abs(response).max() * 3, "kv", ms=8,
            label="two highest peaks")
    ax.annotate("bright plateau", (22, 3.3), ha="center", fontsize=8)
    ax.annotate("inverted template", (35, -3.9), ha="center", fontsize=8)
    ax.set(ylim=(-4.5, 4.8), xlabel="position", ylabel="value",
           title="The template as kernel: a template matcher")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
