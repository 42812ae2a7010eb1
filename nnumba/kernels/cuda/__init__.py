"""The CUDA kernel set: ``numba.cuda`` kernels on device arrays (numba.cuda
DeviceNDArray, C-contiguous), with the names and signatures of the CPU set
(:data:`nnumba.kernels.KERNELS`).

Nothing here is imported on the CPU path: importing numba.cuda costs time and
needs the numba-cuda package (``pip install "nnumba[cuda]"``).  Each entry point
runs the CPU set's argument checks first (shapes, dtypes, strides, C-contiguous
outputs: :mod:`..flat`, :mod:`..row_checks`, :mod:`..window_checks`); values that
only the device holds (indices, labels) are guarded in the kernels that read them,
which write NaN (or a label -1) where one is out of range, for the checks after
them to report.
"""
from .activations import (relu_backward, relu_forward, sigmoid_backward, sigmoid_forward,
                          tanh_backward, tanh_forward, threshold_forward)
from .adaptive_pool import adaptive_avgpool2d_backward, adaptive_avgpool2d_forward
from .arrays import accumulate, all_finite, fill, gather_rows, multiply, scale
from .conv import conv2d_backward_input, conv2d_backward_weight, conv2d_forward
from .conv_pool import conv2d_relu_maxpool2d_backward, conv2d_relu_maxpool2d_forward
from .dense import (accumulate_bias_grad, add_bias, add_bias_relu, matmul,
                    relu_backward_bias_grad)
from .losses import hinge, logistic, softmax_cross_entropy, squared_error
from .optim import sgd_step
from .pool import (avgpool2d_backward, avgpool2d_forward, maxpool2d_backward,
                   maxpool2d_forward, relu_maxpool2d_backward, relu_maxpool2d_forward)

__all__ = ["matmul", "add_bias", "accumulate_bias_grad", "add_bias_relu",
           "relu_backward_bias_grad", "relu_forward", "relu_backward",
           "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
           "threshold_forward", "fill", "scale", "multiply", "accumulate", "gather_rows",
           "all_finite", "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
           "conv2d_relu_maxpool2d_forward", "conv2d_relu_maxpool2d_backward",
           "maxpool2d_forward", "maxpool2d_backward", "relu_maxpool2d_forward",
           "relu_maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
           "adaptive_avgpool2d_forward", "adaptive_avgpool2d_backward",
           "softmax_cross_entropy", "squared_error", "logistic", "hinge", "sgd_step"]
