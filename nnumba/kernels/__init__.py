"""Compute kernels: one *kernel set* per device, each exporting the same names with
the same signatures, so that a layer's one body runs on any device
(``self.kernels`` is its device's set; see :mod:`nnumba.device`).

- :mod:`nnumba.kernels.cpu`: numba kernels on numpy arrays, parallel over numba's
  threads;
- :mod:`nnumba.kernels.cuda`: ``numba.cuda`` kernels on device arrays (imported
  only when CUDA is asked for).

The formulas of activations, losses, the update rule and the average pools are
written once (:mod:`.formulas`) and compiled by each set; window arithmetic is
:mod:`.geometry`.  Kernels are leaves: they import nothing from the rest of nnumba,
and each set checks its arguments before a kernel runs (:mod:`.flat`,
:mod:`.row_checks`, :mod:`.window_checks`, shared by both), because Numba does no
bounds checking; the layers check first, so that their errors name the layer.

``KERNELS`` is the interface: every set exports exactly these, with the
signatures documented in :mod:`nnumba.kernels.cpu` (tests compare the sets).
Outputs come last; ``accumulate`` / ``backward_weight`` kernels add (+=), every
other kernel writes its outputs fully.
"""

KERNELS = (
    # dense
    "matmul",                  # (a, b, out, trans_a=False, trans_b=False, accumulate=False)
    "add_bias",                # (y, b): y (N, D) += b
    "accumulate_bias_grad",    # (dl_dy, db): db += column sums
    "add_bias_relu",           # (y, b): y = relu(y + b), a Linear fused with its ReLU
    "relu_backward_bias_grad",  # (y, dl_dy, dl_ds, db): dl_ds = dl_dy * (y > 0); db += sums
    # elementwise, on flat arrays; backward takes the forward output y
    "relu_forward", "relu_backward", "tanh_forward", "tanh_backward",
    "sigmoid_forward", "sigmoid_backward", "threshold_forward",
    # arrays
    "fill", "scale", "multiply", "accumulate", "gather_rows", "all_finite",
    # convolution and pooling, NCHW; the conv kernels take keep=None (see cpu/conv.py)
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
    "maxpool2d_forward", "maxpool2d_backward", "relu_maxpool2d_forward",
    "relu_maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
    # (x, w, b, stride, pad, pool_kernel, pool_stride, out, argmax_out) and
    # (x, w, dy, argmax, out, stride, pad, dw_out, db_out, dx_out): a Conv2d, its
    # ReLU and a max-pool, as a model runs them
    "conv2d_relu_maxpool2d_forward", "conv2d_relu_maxpool2d_backward",
    "adaptive_avgpool2d_forward", "adaptive_avgpool2d_backward",
    # losses and the update rule
    "softmax_cross_entropy", "squared_error", "logistic", "hinge", "sgd_step",
)
