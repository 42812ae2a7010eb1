"""The lecture's argument for convolutions: a Linear layer from a 256 x 256 RGB image
to an image of the same size has (256 x 256 x 3)^2 = 3.87e10 weights, about
150 GB in float32; a convolution layer producing the same image, a handful.

Sized by nnumba.summary from the models' specs, without allocating anything
(the zoo's ``image-linear``, and a Conv2d 3 -> 3 channels, 3 x 3, padded).
"""
import numpy as np

from ..summary import approx_bytes, si_bytes, summarize
from .common import Result, experiment, finish, format_table, with_figure

SIDES = (16, 32, 64, 128, 256)
CHANNELS = 3


def convolution(kernel: int = 3) -> list:
    """A convolution layer from C channels to C channels that keeps the image size."""
    return [{"type": "Conv2d", "in_channels": CHANNELS, "out_channels": CHANNELS,
             "kernel_size": kernel, "padding": kernel // 2}]


@experiment("image-linear-size",
            "a Linear layer from a 256x256 RGB image to an image of the same size: "
            "3.87e10 parameters, about 150 GB; a convolution layer: 84",
            slide="Convolution layers: the size of a linear layer",
            quote="A linear layer taking a 256×256 RGB image as input, and producing an image "
                  "of same size would require (256 × 256 × 3)² ≃ 3.87e+10 parameters, with the "
                  "corresponding memory footprint (≃ 150Gb!).")
def run(out_dir=None, fast=False, sides=SIDES) -> Result:
    rows, numbers = [], {}
    for side in sides:
        linear = summarize("image-linear", height=side, width=side, channels=CHANNELS)
        conv = summarize(convolution(), input_shape=(CHANNELS, side, side))
        numbers[side] = {"linear_params": linear.params, "linear_bytes": linear.param_bytes,
                         "conv_params": conv.params, "conv_bytes": conv.param_bytes}
        rows.append([f"{side}x{side}x{CHANNELS}", f"{linear.params:.3g}",
                     f"{si_bytes(linear.param_bytes)} (≈ {approx_bytes(linear.param_bytes)})",
                     conv.params, si_bytes(conv.param_bytes)])
    table = format_table(["image", "Linear: parameters", "Linear: float32 memory",
                          "Conv2d 3x3: parameters", "Conv2d: memory"], rows)
    table += ("\nsized by nnumba.summary from the specs (nothing allocated); Linear without "
              "bias, as the lecture counts; 1 GB = 10^9 bytes")
    result = Result("image-linear-size", "a linear layer on a 256x256 RGB image has "
                                         "(256 x 256 x 3)^2 = 3.87e10 parameters, about 150 GB",
                    table, numbers)
    return with_figure(result, out_dir, lambda axes: _draw(axes[0], numbers), size=(7, 4.8),
                       title="Convolution layers: the size of a linear layer on images")


def _draw(ax, numbers):
    sides = np.array(list(numbers))
    linear = [numbers[s]["linear_params"] for s in sides]
    ax.loglog(sides, linear, "o-", color="tab:red", label="Linear, image to image")
    ax.loglog(sides, [numbers[s]["conv_params"] for s in sides], "s-", color="tab:blue",
              label="Conv2d 3 → 3 channels, 3×3")
    last = sides[-1]
    ax.annotate(f"{linear[-1]:.3g} parameters\n= {si_bytes(numbers[last]['linear_bytes'])} "
                f"in float32", (last, linear[-1]), xytext=(-10, -30), textcoords="offset points",
                ha="right", fontsize=9)
    ax.set_xticks(sides, [f"{s}×{s}" for s in sides])
    ax.minorticks_off()
    finish(ax, legend=9, grid="both", ylabel="parameters (log scale)",
           xlabel=f"image size (×{CHANNELS} colour channels), in and out")
