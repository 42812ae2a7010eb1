"""Rosenblatt's perceptron epoch: inherently sequential, so a serial kernel.

A sample's score w . x_n is the lecture's loop's, summed in order with every product
rounded (scikit-learn's Perceptron sums so too): with fastmath's fused multiply-adds,
-0.1*0.1 + 0.1*0.1 was not 0, and a sample exactly on the boundary passed as no
mistake while predict got it wrong.  Summing in order is 7x slower at 784 features,
so the score is summed in any order first, and in order only where that leaves its
sign in doubt.  (numba compiles a callee with the fastmath flags of its first caller
unless it names its own: the in-order functions say fastmath=False.)

The bias is the weight ``w[D]`` of a constant feature ``b`` (1, or 0 for none) that
comes after the D features of ``x`` (N, D), as the lecture's extra input: passed as
a number rather than a column, so the set is not copied to add it."""
from numba import njit
from ..cache_stamp import stamp

# The sets come in float64 (train/perceptron.py): its unit roundoff, and the spacing
# of its subnormals (a product's error where it underflows).
ROUNDOFF = 2.0 ** -53
SUBNORMAL = 5e-324


@njit(cache=True, fastmath={"reassoc", "nsz", "arcp"})  # no "contract": products rounded
def _any_order(x, i, w, b):
    """(w . (x_i, b), sum of |each product|), summed in any order (vectorised)."""
    s = 0.0
    size = 0.0
    for j in range(x.shape[1]):
        p = x[i, j] * w[j]
        s += p
        size += abs(p)
    p = b * w[x.shape[1]]
    return s + p, size + abs(p)


@njit(cache=True, fastmath=False)
def _in_order(x, i, w, b):
    """w . (x_i, b) summed in order, every product rounded."""
    s = 0.0
    for j in range(x.shape[1]):
        s += x[i, j] * w[j]
    return s + b * w[x.shape[1]]


@njit(cache=True, fastmath=False)
def _score(x, i, w, b):
    """A number with the sign of ``_in_order(x, i, w, b)``, and 0 only where that is 0:
    any order's sum where it is further from 0 than the two orders' rounding (each
    within n u sum |x_ij w_j| of the exact sum) can reach, else the sum in order."""
    s, size = _any_order(x, i, w, b)
    if abs(s) > 4.0 * w.size * (ROUNDOFF * size + SUBNORMAL):
        return s
    return _in_order(x, i, w, b)


@njit(cache=True)
def perceptron_epoch(x, y, w, b):
    """One pass in order over x (N, D) and y (N,) in {-1, +1}, updating w (D + 1,) in
    place: w += y_n (x_n, b) whenever y_n (w . (x_n, b)) <= 0. Returns the number of
    updates."""
    changes = 0
    d = x.shape[1]
    for i in range(x.shape[0]):
        if _score(x, i, w, b) * y[i] <= 0:
            for j in range(d):
                w[j] += y[i] * x[i, j]
            w[d] += y[i] * b
            changes += 1
    return changes


@njit(cache=True)
def sign_errors(x, y, w, b):
    """Number of samples with sigma(w . (x_n, b)) != y_n, sigma(s) = 1 if s >= 0 else -1."""
    errors = 0
    for i in range(x.shape[0]):
        if (1 if _score(x, i, w, b) >= 0 else -1) != y[i]:
            errors += 1
    return errors


@njit(cache=True, fastmath=False)
def scores(x, w, b, out):
    """out[n] = w . (x_n, b) as the epochs score it (``_score``): predict's sign is the
    table's, where BLAS's fused multiply-adds could tip a sample on the boundary."""
    for i in range(x.shape[0]):
        out[i] = _score(x, i, w, b)


stamp(globals())  # the disk cache follows every kernel source
