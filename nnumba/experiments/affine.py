"""An MLP whose activation is affine is itself affine: numerically.

The MLP x^(l) = sigma(w^(l) x^(l-1) + b^(l)) with sigma(s) = a s + c, built by
the engine (Linear layers and an elementwise affine layer), computes the same
map as ONE affine layer x -> W x + B, where (W, B) is composed from its
parameters: W = w^(L) a w^(L-1) ... a w^(1), and B likewise. The two agree to
float64 rounding on random inputs. The same weights with tanh do not: no affine
map comes close (the least-squares one is shown).
"""
import numpy as np

from ..layers import Layer, Linear, Tanh
from ..model import Sequential
from .common import Result, experiment, finish, format_table, network, with_figure

WIDTHS = (4, 16, 16, 16, 3)   # D, three hidden layers, C
SLOPE, OFFSET = 0.5, 0.2      # the affine sigma(s) = a s + c


class AffineActivation(Layer):
    """sigma(s) = slope * s + offset, elementwise."""
    examples = [({}, (3, 4))]

    def __init__(self, slope: float = SLOPE, offset: float = OFFSET):
        super().__init__()
        self.slope, self.offset = float(slope), float(offset)

    def _forward(self, x):
        return self.slope * x + self.offset

    def _backward(self, dl_dy):
        return self.slope * dl_dy if self.needs_input_grad else None


def mlp(activation, seed: int = 0) -> Sequential:
    """Linear layers of WIDTHS with ``activation()`` between them, in float64."""
    layers = [Linear(WIDTHS[0], WIDTHS[1])]
    for n_in, n_out in zip(WIDTHS[1:], WIDTHS[2:]):
        layers += [activation(), Linear(n_in, n_out)]
    return Sequential(*layers, seed=seed).astype(np.float64)


def composed(model: Sequential):
    """(W, B) of the single affine map the affine MLP computes, from its parameters."""
    w, b = None, None
    for layer in model.layers:
        if isinstance(layer, AffineActivation):
            w, b = layer.slope * w, layer.slope * b + layer.offset
        else:
            w_l, b_l = layer.weight.value, layer.bias.value
            w, b = (w_l, b_l.copy()) if w is None else (w_l @ w, w_l @ b + b_l)
    return w, b


def best_affine(model: Sequential, x: np.ndarray):
    """(W, B) of the least-squares affine fit of the model's outputs on x."""
    design = np.column_stack([x, np.ones(len(x))])
    coef, *_ = np.linalg.lstsq(design, model.predict(x), rcond=None)
    return coef[:-1].T, coef[-1]


@experiment("mlp-affine",
            "an MLP with an affine sigma equals one affine map composed from its "
            "parameters, to rounding; with tanh no affine map comes close",
            slide="Deep models: the activation must be non-linear",
            quote="If σ is an affine transformation, the full MLP is a composition of affine "
                  "mappings, and itself an affine mapping.")
def run(out_dir=None, fast=False) -> Result:
    x = np.random.default_rng(1).normal(0, 2, (1000, WIDTHS[0]))
    affine_mlp, tanh_mlp = mlp(AffineActivation), mlp(Tanh)
    w, b = composed(affine_mlp)
    out = affine_mlp.predict(x)
    gap = float(np.max(np.abs(out - (x @ w.T + b))))
    w_t, b_t = best_affine(tanh_mlp, x)
    out_t = tanh_mlp.predict(x)
    gap_t = float(np.max(np.abs(out_t - (x @ w_t.T + b_t))))
    scale, scale_t = float(np.max(np.abs(out))), float(np.max(np.abs(out_t)))
    rows = [[f"affine, {SLOPE:g} s + {OFFSET:g}", affine_mlp.num_params(),
             "composed from the parameters", f"{gap:.1e}", f"{gap / scale:.1e}"],
            ["tanh (the same weights)", tanh_mlp.num_params(), "least-squares fit",
             f"{gap_t:.1e}", f"{gap_t / scale_t:.1e}"]]
    table = format_table(["sigma", "MLP parameters", "affine map W x + B",
                          "max |f(x) - (W x + B)|", "relative to max |f|"], rows)
    table += (f"\nMLP {'-'.join(map(str, WIDTHS))} in float64 on {len(x)} random inputs; "
              f"the affine map it equals has {w.size + b.size} parameters (W: "
              f"{w.shape[0]}x{w.shape[1]}, B: {b.size}); float64 epsilon = "
              f"{np.finfo(np.float64).eps:.1e}")
    numbers = {"max_gap": gap, "relative_gap": gap / scale, "tanh_max_gap": gap_t,
               "tanh_relative_gap": gap_t / scale_t, "W": w.tolist(), "B": b.tolist(),
               "mlp_params": affine_mlp.num_params(), "affine_params": int(w.size + b.size)}
    result = Result("mlp-affine", "with an affine sigma the MLP is an affine mapping with a "
                                  "peculiar parametrization", table, numbers)
    return with_figure(result, out_dir, _draw, (affine_mlp, w, b), (tanh_mlp, w_t, b_t),
                       ncols=3, size=(18, 4.6), title="Deep models: the activation must be "
                                                       "non-linear, or the MLP is one affine map")


def _draw(axes, affine, tanh):
    """Each MLP's outputs along a line through input space, and its affine map."""
    rng = np.random.default_rng(2)
    start, direction = rng.normal(0, 1, WIDTHS[0]), rng.normal(0, 1, WIDTHS[0])
    t = np.linspace(-3, 3, 200)
    line = start + t[:, None] * direction
    panels = ((axes[0], affine, "affine σ(s) = 0.5 s + 0.2", "W x + B composed from the weights"),
              (axes[1], tanh, "tanh, the same weights", "best affine fit (least squares)"))
    for ax, (model, w, b), name, fit in panels:
        out, mapped = model.predict(line), line @ w.T + b
        for k, colour in zip(range(out.shape[1]), ("tab:blue", "tab:orange", "tab:green")):
            ax.plot(t, out[:, k], color=colour, lw=2.5, alpha=0.6, label=f"MLP output {k + 1}")
            ax.plot(t, mapped[:, k], "--", color="k", lw=1, label=fit if k == 0 else None)
        finish(ax, f"MLP {'-'.join(map(str, WIDTHS))} with {name}", grid="major",
               xlabel="t, along the line x = x₀ + t d in the input space", ylabel="output f(x)")
    weights = [layer.weight.value for layer in affine[0].layers if isinstance(layer, Linear)]
    network(axes[2], WIDTHS, weights, inputs=[f"x{i + 1}" for i in range(WIDTHS[0])],
            outputs=[f"f{k + 1}" for k in range(WIDTHS[-1])])
    axes[2].set_title("The MLP as a combination of units\n(edges: red w > 0, blue w < 0, "
                      "the darker the larger |w|)", fontsize=10)
