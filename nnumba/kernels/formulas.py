"""Element formulas, written once for every device.

Each function computes one element (or one row) of its outputs from its inputs
at index ``i``: plain Python on arrays and scalars, no decorator.  The kernel
sets compile them for their target, ``njit(inline="always")`` in
:mod:`nnumba.kernels.cpu` and ``cuda.jit(device=True, inline=True)`` in
:mod:`nnumba.kernels.cuda`, and each wraps them in its own loop: a ``prange`` on
the CPU, a grid-stride loop on the GPU.  So a formula is fixed in one place and
the two devices compute the same thing.

Constants are made in the arrays' dtype (``x.dtype.type(2)``): a bare Python
number would promote float32 arithmetic to float64.
"""
import math


# ---- activations: forward writes y[i] from x[i]; backward dx[i] from the forward
#: fastmath without its no-NaN and no-infinity assumptions, for kernels whose
#: comparisons must treat NaN as PyTorch does (under them `v != v` is false and a NaN
#: took either branch of a ReLU by its position in the vectorised loop)
NAN_EXACT = {"nsz", "arcp", "contract", "afn", "reassoc"}


# ---- output y[i] and the incoming gradient g[i] (all an activation's derivative needs)

def relu(x, y, i):
    zero = y.dtype.type(0)
    y[i] = zero if x[i] < zero else x[i]   # NaN and -0.0 pass, as in PyTorch


def relu_grad(y, g, dx, i):
    zero = dx.dtype.type(0)
    dx[i] = zero if y[i] <= zero else g[i]   # at NaN g passes, as PyTorch's threshold_backward


def tanh(x, y, i):
    # The lecture's 2 / (1 + e^{-2x}) - 1, rearranged without cancellation: with
    # u = e^{-2|x|} - 1 (expm1, exact near 0) it is -u / (2 + u); odd in x, so the
    # sign is x's (copysign: tanh(-0.0) is -0.0, as np.tanh gives).
    # Exactly 0 at 0, and within a few ulps of tanh for every x.
    two = y.dtype.type(2)
    u = math.expm1(-two * abs(x[i]))
    y[i] = math.copysign(-u / (two + u), x[i])


def tanh_grad(y, g, dx, i):
    one = dx.dtype.type(1)
    dx[i] = g[i] * (one - y[i] * y[i])


def sigmoid(x, y, i):
    # 1 / (1 + e^{-x}), with e^{-|x|} so that no exponent overflows.
    one = y.dtype.type(1)
    e = math.exp(-abs(x[i]))
    y[i] = one / (one + e) if x[i] >= 0 else e / (one + e)


def sigmoid_grad(y, g, dx, i):
    one = dx.dtype.type(1)
    dx[i] = g[i] * y[i] * (one - y[i])


def threshold(x, y, i):
    # The lecture's sigma(x) = 1 if x >= 0 else -1.
    one = y.dtype.type(1)
    y[i] = one if x[i] >= 0 else -one


# ---- a dense layer's bias, fused with the ReLU after it -----------------------------------

def bias_relu(y, b, i, j):
    """y[i, j] = relu(y[i, j] + b[j])."""
    zero = y.dtype.type(0)
    v = y[i, j] + b[j]
    y[i, j] = zero if v < zero else v   # NaN and -0.0 pass, as in PyTorch


# ---- the update rule -------------------------------------------------------------

def sgd(params, grads, velocity, lr, momentum, weight_decay, i):
    """PyTorch's SGD: g = grad + wd * p; with momentum mu, v = mu * v + g and p -= lr * v;
    at mu 0, p -= lr * g and v is left alone, as torch keeps no buffer then: momentum
    switched on later starts from g (v is 0), or goes on from the buffer it had."""
    g = grads[i] + weight_decay * params[i]
    if momentum != 0:
        g = momentum * velocity[i] + g
        velocity[i] = g
    params[i] -= lr * g


#: the losses and the average pools sum runs of this many terms plainly, then the
#: runs with Kahan's carry (see adaptive_avg)
RUN = 64


# ---- losses: per sample i, the loss and the gradient w.r.t. the prediction,
# ---- the gradient multiplied by ``scale`` (1/N for a mean, 1 for a sum)

def softmax_cross_entropy(z, labels, scale, losses, dl_dz, i):
    """Row i of logits z (N, C), label in [0, C): -log softmax(z_i)[label], stable."""
    c = z.shape[1]
    label = labels[i]
    m = z[i, 0]
    for j in range(1, c):
        if z[i, j] > m:
            m = z[i, j]
    # Runs of RUN terms summed plainly, the runs with Kahan's carry (as adaptive_avg):
    # every term is positive, so a plain float32 sum over 1e6 classes drifts by 1e-4.
    # Ten classes make one run: the plain sum, bit for bit.  (Terms are at most 1.)
    total = carry = zero = z.dtype.type(0)
    for j0 in range(0, c, RUN):
        part = zero
        for j in range(j0, min(j0 + RUN, c)):
            e = math.exp(z[i, j] - m)
            dl_dz[i, j] = e
            part += e
        v = part - carry
        t = total + v
        carry = (t - total) - v
        total = t
    # (m - z_label) first: it is exact, and log(total) in [0, log C] is then not lost
    # to rounding beside a large m (logits of 1e7 in float32).
    losses[i] = (m - z[i, label]) + math.log(total)
    inv = scale / total
    for j in range(c):
        dl_dz[i, j] *= inv
    dl_dz[i, label] -= scale


def squared_error(yhat, y, scale, losses, dl_dyhat, i):
    """Row i of (N, K): the sum of squares; gradient 2 (yhat - y) * scale."""
    two = yhat.dtype.type(2)
    s = carry = zero = yhat.dtype.type(0)
    k = yhat.shape[1]
    for j0 in range(0, k, RUN):  # runs, then Kahan's carry, as softmax_cross_entropy
        part = zero
        for j in range(j0, min(j0 + RUN, k)):
            d = yhat[i, j] - y[i, j]
            part += d * d
            dl_dyhat[i, j] = two * d * scale
        v = part - carry
        t = s + v
        carry = (t - s) - v if t - t == zero else zero  # an infinite sum stays infinite
        s = t
    losses[i] = s


def logistic(yhat, y, scale, losses, dl_dyhat, i):
    """-log sigmoid(y yhat) = log(1 + e^{-y yhat}) for y in {-1, 1}."""
    one = yhat.dtype.type(1)
    zero = yhat.dtype.type(0)
    t = y[i] * yhat[i]
    e = math.exp(-abs(t))
    losses[i] = max(-t, zero) + math.log1p(e)          # softplus(-t), no overflow
    sig_minus_t = one / (one + e) if t <= 0 else e / (one + e)
    dl_dyhat[i] = -y[i] * sig_minus_t * scale


def hinge(yhat, y, margin, scale, losses, dl_dyhat, i):
    """max(0, margin - y yhat): margin 1 is the SVM's hinge, 0 the perceptron's."""
    zero = yhat.dtype.type(0)
    v = margin - y[i] * yhat[i]
    if v != v:  # a NaN prediction: NaN, as PyTorch's clamp gives, not a sample on its side
        losses[i] = v
        dl_dyhat[i] = v
    elif v > 0:
        losses[i] = v
        dl_dyhat[i] = -y[i] * scale
    else:
        losses[i] = zero
        dl_dyhat[i] = zero


# ---- pooling windows ------------------------------------------------------------------

# Adaptive pooling's bins are PyTorch's: output cell i of `out` over `size` inputs
# covers [floor(i*size/out), ceil((i+1)*size/out)).  (Written out in each formula:
# an inlined formula cannot call a plain helper.)

def adaptive_bin(i, size, out):
    """[start, end) of output cell i of ``out`` over ``size`` inputs."""
    return (i * size) // out, ((i + 1) * size + out - 1) // out


def adaptive_avg(x, y, n, c, i, j):
    """y[n, c, i, j] = the mean of its adaptive bin of x (N, C, H, W)."""
    H, W, Ho, Wo = x.shape[2], x.shape[3], y.shape[2], y.shape[3]
    h0, h1 = (i * H) // Ho, ((i + 1) * H + Ho - 1) // Ho
    w0, w1 = (j * W) // Wo, ((j + 1) * W + Wo - 1) // Wo
    # Each value is scaled before the sum: a sum of values near the dtype's maximum
    # would overflow where their mean does not.  Runs of up to RUN values of a row are
    # summed plainly, and the runs with Kahan's carry: a plain float32 sum of a large
    # map (a global pool) drifts by 1e-5, this one by about 1e-7, without float64
    # (which a GPU's float32 path avoids) and near a plain sum's speed (a carry at
    # every value took 4 times as long).  The kernels running it have no fastmath,
    # which would drop the carry; an infinite sum stays infinite (its carry: NaN).
    inv = x.dtype.type(1) / x.dtype.type((h1 - h0) * (w1 - w0))
    s = carry = zero = x.dtype.type(0)
    if (h1 - h0) * (w1 - w0) <= RUN:  # one run: a plain sum (the loops below cost 2x)
        for r in range(h0, h1):
            for q in range(w0, w1):
                s += x[n, c, r, q] * inv
        y[n, c, i, j] = s
        return
    for r in range(h0, h1):
        for q0 in range(w0, w1, RUN):
            part = zero
            for q in range(q0, min(q0 + RUN, w1)):
                part += x[n, c, r, q] * inv
            v = part - carry
            t = s + v
            carry = (t - s) - v if t - t == zero else zero
            s = t
    y[n, c, i, j] = s


def adaptive_avg_grad(dy, dx, n, c, r, q):
    """dx[n, c, r, q]: the gradients of every bin holding that pixel, each spread
    evenly over its bin (a gather: no two pixels write the same place)."""
    H, W = dx.shape[2], dx.shape[3]
    Ho, Wo = dy.shape[2], dy.shape[3]
    s = dx.dtype.type(0)
    for i in range(Ho):
        h0, h1 = (i * H) // Ho, ((i + 1) * H + Ho - 1) // Ho
        if h0 <= r < h1:
            for j in range(Wo):
                w0, w1 = (j * W) // Wo, ((j + 1) * W + Wo - 1) // Wo
                if w0 <= q < w1:
                    s += dy[n, c, i, j] / dx.dtype.type((h1 - h0) * (w1 - w0))
    dx[n, c, r, q] = s


def avg_window(x, kh, kw, sh, sw, y, n, c, i, j):
    """y[n, c, i, j] = the mean of window (i, j) of x (N, C, H, W)."""
    inv = x.dtype.type(1) / x.dtype.type(kh * kw)  # scaled first, as in adaptive_avg
    s = carry = zero = x.dtype.type(0)
    if kh * kw <= RUN:  # one run: a plain sum, as in adaptive_avg
        for ki in range(kh):
            for kj in range(kw):
                s += x[n, c, i * sh + ki, j * sw + kj] * inv
        y[n, c, i, j] = s
        return
    for ki in range(kh):  # runs of a row, then the rows' carry, as in adaptive_avg
        for k0 in range(0, kw, RUN):
            part = zero
            for kj in range(k0, min(k0 + RUN, kw)):
                part += x[n, c, i * sh + ki, j * sw + kj] * inv
            v = part - carry
            t = s + v
            carry = (t - s) - v if t - t == zero else zero
            s = t
    y[n, c, i, j] = s


def avg_window_grad(dy, kh, kw, sh, sw, dx, n, c, r, q):
    """dx[n, c, r, q]: the sum over the windows holding (r, q) of their gradient,
    divided by the window size (a gather)."""
    Ho, Wo = dy.shape[2], dy.shape[3]
    # windows i with i*sh <= r < i*sh + kh: ceil((r-kh+1)/sh) <= i <= r//sh, the
    # ceiling written without r - kh + sh, which wraps past int64 for a stride near 2**63
    i_lo = 0 if r < kh else (r - kh) // sh + 1
    i_hi = min(Ho - 1, r // sh)
    j_lo = 0 if q < kw else (q - kw) // sw + 1
    j_hi = min(Wo - 1, q // sw)
    inv = dx.dtype.type(1) / dx.dtype.type(kh * kw)  # scaled first, as in adaptive_avg
    s = dx.dtype.type(0)
    for i in range(i_lo, i_hi + 1):
        for j in range(j_lo, j_hi + 1):
            s += dy[n, c, i, j] * inv
    dx[n, c, r, q] = s
