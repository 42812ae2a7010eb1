"""The lecture's hand-designed features as layers.

nnumba's Layer base validates every input (dtype, shape from input_shape(),
NaN, empty batch) before it reaches a kernel here. None of these layers has
parameters: they are fixed maps Phi, placed before a trained linear model.
"""
from __future__ import annotations

import numpy as np

from nnumba import Layer
from nnumba.errors import SpecError, TooLargeError
from nnumba.layers.validation import MAX_SIZE, check_memory, flag, integer, number

from . import kernels


class _FeatureLayer(Layer):
    """A fixed feature map computed with numpy and this plugin's own @njit kernels:
    it runs on the CPU only (``devices``), which nnumba checks before a model moves."""
    devices = ("cpu",)


class XorProduct(_FeatureLayer):
    """Phi(x_u, x_v) = (x_u, x_v, x_u * x_v): makes xor linearly separable."""
    examples = [({}, (4, 2))]

    def input_shape(self):
        return (2,)

    def output_shape(self, input_shape):
        return (3,)

    def _forward(self, x):
        self._x = x
        y = self._buffer("y", (x.shape[0], 3))
        y[:, :2] = x
        np.multiply(x[:, 0], x[:, 1], out=y[:, 2])
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        x = self._x
        dl_dx = self._buffer("dx", x.shape)
        # d(u v)/du = v and d(u v)/dv = u.
        dl_dx[:, 0] = dl_dy[:, 0] + dl_dy[:, 2] * x[:, 1]
        dl_dx[:, 1] = dl_dy[:, 1] + dl_dy[:, 2] * x[:, 0]
        return dl_dx


def monomial_count(in_features: int, degree: int, include_bias: bool = True,
                   limit: int = MAX_SIZE) -> int:
    """How many monomials of degree <= ``degree`` there are in ``in_features``
    inputs, C(F + D, D) (less the bias without it), or ``limit + 1`` once past
    ``limit``: found in at most about 64 steps, however large F and D are."""
    # C(n, k) = C(n - 1, k - 1) * n / k, with k = min(F, D): every step at least
    # doubles it (n - k >= k), so a count past ``limit`` shows within ~log2(limit) steps.
    k, rest = min(in_features, degree), max(in_features, degree)
    count = 1
    for i in range(1, k + 1):
        count = count * (rest + i) // i
        if count - (not include_bias) > limit:
            return limit + 1
    return count - (not include_bias)


def monomial_powers(in_features: int, degree: int, include_bias: bool = True) -> np.ndarray:
    """(M, F) exponents of every monomial of degree <= ``degree``, in scikit-learn's
    PolynomialFeatures order: by degree, then combinations with replacement.
    TooLargeError, before anything is allocated, where they would not fit in memory."""
    count = monomial_count(in_features, degree, include_bias)
    what = (f"PolynomialFeatures: the monomials of degree <= {degree} in {in_features} "
            f"input(s)")
    if count > MAX_SIZE:
        raise TooLargeError(f"{what} number more than {MAX_SIZE:,}, more than any array "
                            f"can hold; lower the degree or the number of inputs")
    check_memory(f"{what} ({count:,} of them)", float(count) * in_features * 8)
    powers = np.empty((count, in_features), np.int64)
    kernels.fill_monomial_powers(0 if include_bias else 1, powers)
    return powers


class PolynomialFeatures(_FeatureLayer):
    """Every monomial of the inputs up to ``degree``; for one input the lecture's
    Phi(x) = (1, x, x^2, ..., x^D). Same columns, same order as scikit-learn's."""
    examples = [({"in_features": 1, "degree": 4}, (5, 1)),
                ({"in_features": 3, "degree": 3, "include_bias": False}, (4, 3))]

    def __init__(self, in_features: int = 1, degree: int = 2, include_bias: bool = True):
        super().__init__()
        self.in_features = integer("PolynomialFeatures", "in_features", in_features)
        self.degree = integer("PolynomialFeatures", "degree", degree, 0)
        self.include_bias = flag("PolynomialFeatures", "include_bias", include_bias)
        if self.degree == 0 and not self.include_bias:
            raise SpecError("PolynomialFeatures: degree 0 without the bias leaves no feature")
        self.powers = monomial_powers(self.in_features, self.degree, self.include_bias)

    @property
    def num_outputs(self) -> int:
        return self.powers.shape[0]

    def input_shape(self):
        return (self.in_features,)

    def output_shape(self, input_shape):
        return (self.num_outputs,)

    def _forward(self, x):
        self._x = x
        y = self._buffer("y", (x.shape[0], self.num_outputs))
        kernels.monomials_forward(x, self.powers, y)
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        dl_dx = self._buffer("dx", self._x.shape)
        kernels.monomials_backward(self._x, self.powers, dl_dy, dl_dx)
        return dl_dx


def random_pairs(in_features: int, num_products: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``num_products`` pairs (i, j), i != j, drawn uniformly from ``seed``;
    TooLargeError, before drawing, where they would not fit in memory."""
    # first, the offsets, second and the two int64 copies returned: 5 arrays at most
    check_memory(f"RandomPairProducts: {num_products:,} random pairs", 5 * 8.0 * num_products)
    rng = np.random.default_rng(seed)
    first = rng.integers(0, in_features, num_products)
    # A non-zero offset modulo in_features makes the second index differ from the first.
    second = (first + rng.integers(1, in_features, num_products)) % in_features
    return first.astype(np.int64), second.astype(np.int64)


class RandomPairProducts(_FeatureLayer):
    """The input followed by products x_i x_j of ``num_products`` random pairs of its
    features (the lecture's MNIST "8" vs the rest). The pairs come from ``seed``
    alone, so the spec {"seed": ...} rebuilds the same layer after save/load."""
    examples = [({"in_features": 6, "num_products": 10, "seed": 3}, (4, 6)),
                ({"in_features": 5, "num_products": 4, "keep_input": False}, (3, 5))]

    def __init__(self, in_features: int, num_products: int, seed: int = 0,
                 keep_input: bool = True):
        super().__init__()
        self.in_features = integer("RandomPairProducts", "in_features", in_features, 2)
        self.num_products = integer("RandomPairProducts", "num_products", num_products, 0)
        self.seed = integer("RandomPairProducts", "seed", seed, 0, None)
        self.keep_input = flag("RandomPairProducts", "keep_input", keep_input)
        if self.num_products == 0 and not self.keep_input:
            raise SpecError("RandomPairProducts: no products and no input leaves no feature")
        self.first, self.second = random_pairs(self.in_features, self.num_products, self.seed)

    @property
    def num_outputs(self) -> int:
        return self.num_products + (self.in_features if self.keep_input else 0)

    def input_shape(self):
        return (self.in_features,)

    def output_shape(self, input_shape):
        return (self.num_outputs,)

    def _forward(self, x):
        self._x = x
        y = self._buffer("y", (x.shape[0], self.num_outputs))
        kernels.pair_products_forward(x, self.first, self.second, self.keep_input, y)
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        dl_dx = self._buffer("dx", self._x.shape)
        kernels.pair_products_backward(self._x, self.first, self.second, self.keep_input,
                                       dl_dy, dl_dx)
        return dl_dx


class Radius(_FeatureLayer):
    """x -> ||x||: the feature that keeps only what a radially symmetric task needs.

    Its gradient x / ||x|| is taken as 0 at x = 0, where the norm has a kink."""
    examples = [({"in_features": 2}, (5, 2)), ({"in_features": 4}, (3, 4))]
    kept_for_backward = ("_u", "_s")

    def __init__(self, in_features: int = 2):
        super().__init__()
        self.in_features = integer("Radius", "in_features", in_features)

    def input_shape(self):
        return (self.in_features,)

    def output_shape(self, input_shape):
        return (1,)

    def _forward(self, x):
        # ||x|| = m ||x / m|| with m = max |x_i|, as hypot: the squares of x itself
        # overflow (1e19) or underflow (1e-25) in float32 where the norm fits
        m = np.abs(x).max(axis=1, keepdims=True)
        self._u = x / np.where(m > 0, m, 1)  # all-zero rows stay 0
        self._s = np.sqrt(np.einsum("nf,nf->n", self._u, self._u))[:, None]  # in [1, sqrt F]
        y = self._buffer("y", (x.shape[0], 1))
        np.multiply(m, self._s, out=y)
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        s = self._s  # x / ||x|| = u / s; 0 where s = 0 (x = 0)
        scale = np.where(s > 0, dl_dy / np.where(s > 0, s, 1), 0).astype(self.dtype, copy=False)
        dl_dx = self._buffer("dx", self._u.shape)
        np.multiply(self._u, scale, out=dl_dx)
        return dl_dx


#: eps for HOG: eps ** 2 is a normal, finite float32 (the narrowest dtype a layer takes)
EPS_RANGE = (2e-19, 1e19)


class HOG(_FeatureLayer):
    """Histograms of Oriented Gradients: per cell of ``cell_size`` x ``cell_size``
    pixels, the distribution of edge orientations over ``bins`` bins (the lecture:
    8 x 8 cells, 9 bins). Input (N, 1, height, width), output (N, cells * bins),
    ordered (cell row, cell column, bin); pixels past the last whole cell are left
    out (28 x 28 with 8 x 8 cells: 3 x 3 cells, 81 features).

    No gradient: orientation binning is not differentiable where it matters
    (bin edges, flat regions), and a fixed extractor needs none. As the first
    layer of a model it costs nothing in backward (there is no input gradient to
    compute); anywhere else backward raises NoGradientError.
    """
    has_gradient = False
    examples = [({"height": 8, "width": 8, "cell_size": 4}, (2, 1, 8, 8)),
                ({"height": 12, "width": 10, "cell_size": 4, "bins": 6, "normalize": False},
                 (3, 1, 12, 10))]

    def __init__(self, height: int = 28, width: int = 28, cell_size: int = 8, bins: int = 9,
                 normalize: bool = True, eps: float = 1e-3):
        super().__init__()
        self.cell_size = integer("HOG", "cell_size", cell_size)
        self.height = integer("HOG", "height", height, self.cell_size)
        self.width = integer("HOG", "width", width, self.cell_size)
        self.bins = integer("HOG", "bins", bins, 2)
        self.normalize = flag("HOG", "normalize", normalize)
        # The kernel adds eps ** 2 to a cell's squared norm in the layer's dtype, float32
        # or float64: in float32 a larger eps squares to infinity (every feature 0), a
        # smaller one to 0 or a subnormal (a blank cell divides 0 by 0).
        self.eps = number("HOG", "eps", eps, *EPS_RANGE)

    @property
    def cells(self) -> tuple[int, int]:
        return self.height // self.cell_size, self.width // self.cell_size

    def input_shape(self):
        return (1, self.height, self.width)

    def output_shape(self, input_shape):
        cy, cx = self.cells
        return (cy * cx * self.bins,)

    def _forward(self, x):
        cy, cx = self.cells
        out = self._buffer("y", (x.shape[0], cy, cx, self.bins))
        kernels.hog(np.ascontiguousarray(x[:, 0]), self.cell_size, self.bins, self.normalize,
                    x.dtype.type(self.eps), out)
        return out.reshape(x.shape[0], -1)
