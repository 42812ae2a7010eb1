"""Numba kernels of the feature layers. Leaves: plain functions on arrays.

The layers check every shape before calling them (Numba does no bounds
checking); each kernel loops over samples in parallel and writes only its
own sample's row, so there are no races.
"""
import math

from numba import njit, prange

_OPTS = dict(parallel=True, cache=True)


@njit(**_OPTS)
def monomials_forward(x, powers, y):
    """y[n, m] = prod_f x[n, f] ** powers[m, f]; x (N, F), powers (M, F), y (N, M)."""
    n_samples, n_features = x.shape
    for n in prange(n_samples):
        for m in range(powers.shape[0]):
            v = x.dtype.type(1)
            for f in range(n_features):
                for _ in range(powers[m, f]):  # repeated products, as scikit-learn does
                    v *= x[n, f]
            y[n, m] = v


@njit(**_OPTS)
def monomials_backward(x, powers, dl_dy, dl_dx):
    """dl_dx[n, f] = sum_m dl_dy[n, m] * d(monomial m)/dx_f."""
    n_samples, n_features = x.shape
    for n in prange(n_samples):
        for f in range(n_features):
            total = x.dtype.type(0)
            for m in range(powers.shape[0]):
                p = powers[m, f]
                if p == 0:
                    continue
                d = x.dtype.type(p)
                for _ in range(p - 1):
                    d *= x[n, f]
                for k in range(n_features):
                    if k != f:
                        for _ in range(powers[m, k]):
                            d *= x[n, k]
                total += dl_dy[n, m] * d
            dl_dx[n, f] = total


@njit(**_OPTS)
def pair_products_forward(x, first, second, keep_input, y):
    """y = [x, x[:, first] * x[:, second]] (or the products alone without keep_input)."""
    n_samples, n_features = x.shape
    offset = n_features if keep_input else 0
    for n in prange(n_samples):
        if keep_input:
            for f in range(n_features):
                y[n, f] = x[n, f]
        for k in range(first.shape[0]):
            y[n, offset + k] = x[n, first[k]] * x[n, second[k]]


@njit(**_OPTS)
def pair_products_backward(x, first, second, keep_input, dl_dy, dl_dx):
    n_samples, n_features = x.shape
    offset = n_features if keep_input else 0
    for n in prange(n_samples):
        for f in range(n_features):
            dl_dx[n, f] = dl_dy[n, f] if keep_input else x.dtype.type(0)
        for k in range(first.shape[0]):
            g = dl_dy[n, offset + k]
            dl_dx[n, first[k]] += g * x[n, second[k]]
            dl_dx[n, second[k]] += g * x[n, first[k]]


@njit(**_OPTS)
def hog(images, cell_size, bins, normalize, eps, out):
    """Histograms of oriented gradients (Dalal and Triggs, 2005), one per cell.

    images (N, H, W); out (N, H // cell_size, W // cell_size, bins). Gradients
    by centred differences [-1, 0, 1], 0 across the image border (as
    scikit-image: padding would invent an edge at the frame); unsigned
    orientations in [0, pi), bin k centred on k * pi / bins; each pixel votes
    its gradient magnitude, split linearly between the two nearest bins (the
    last bin wraps to the first: 180 degrees is 0 degrees). Pixels beyond the
    last whole cell are left out. With ``normalize`` each cell's histogram is
    divided by sqrt(||h||^2 + eps^2): the distribution of orientations, not
    the contrast.
    """
    n_images, height, width = images.shape
    cells_y, cells_x = out.shape[1], out.shape[2]
    width_of_bin = math.pi / bins
    zero = images.dtype.type(0)
    for n in prange(n_images):
        for cy in range(cells_y):
            for cx in range(cells_x):
                for b in range(bins):
                    out[n, cy, cx, b] = zero
                for r in range(cy * cell_size, (cy + 1) * cell_size):
                    for c in range(cx * cell_size, (cx + 1) * cell_size):
                        gx = zero
                        if 0 < c < width - 1:
                            gx = images[n, r, c + 1] - images[n, r, c - 1]
                        gy = zero
                        if 0 < r < height - 1:
                            gy = images[n, r + 1, c] - images[n, r - 1, c]
                        magnitude = math.sqrt(gx * gx + gy * gy)
                        if magnitude == 0:
                            continue
                        angle = math.atan2(gy, gx)
                        if angle < 0:
                            angle += math.pi
                        position = angle / width_of_bin
                        low = int(math.floor(position))
                        frac = position - low
                        low = low % bins
                        out[n, cy, cx, low] += magnitude * (1 - frac)
                        out[n, cy, cx, (low + 1) % bins] += magnitude * frac
                if normalize:
                    norm2 = eps * eps
                    for b in range(bins):
                        norm2 += out[n, cy, cx, b] * out[n, cy, cx, b]
                    scale = 1 / math.sqrt(norm2)
                    for b in range(bins):
                        out[n, cy, cx, b] *= scale


@njit(cache=True)
def fill_monomial_powers(first_degree, powers):
    """powers (M, F): the exponent rows of every monomial of degree first_degree,
    first_degree + 1, ..., in scikit-learn's order; M must be their exact count.
    Within a degree that order (combinations with replacement) is the exponent
    vectors' descending lexicographic order, and each row follows from the one
    before: lower the last non-zero exponent before the final feature by one, and
    give the rest of the degree to the feature right after it."""
    n_rows, n_features = powers.shape
    row, d = 0, first_degree
    while row < n_rows:
        for f in range(n_features):
            powers[row, f] = 0
        powers[row, 0] = d  # the largest row of degree d: x_0 ** d
        row += 1
        while row < n_rows:
            i = n_features - 2
            while i >= 0 and powers[row - 1, i] == 0:
                i -= 1
            if i < 0:
                break  # x_{F-1} ** d was the last of degree d
            for f in range(i):
                powers[row, f] = powers[row - 1, f]
            powers[row, i] = powers[row - 1, i] - 1
            # exponents i+1 .. F-2 of the row before are 0: its tail is x_{F-1}'s alone
            powers[row, i + 1] = powers[row - 1, n_features - 1] + 1
            for f in range(i + 2, n_features):
                powers[row, f] = 0
            row += 1
        d += 1
