"""Elementwise activation kernels on flat (1-D, contiguous) arrays.

Layers pass ``x.reshape(-1)`` views, so one kernel serves every shape. Backward
kernels take the forward *output* y, which is all they need.
"""
import numpy as np
from numba import njit, prange

_OPTS = dict(parallel=True, cache=True, fastmath=True)


@njit(**_OPTS)
def relu_forward(x, y):
    zero = x.dtype.type(0)
    for i in prange(x.size):
        y[i] = x[i] if x[i] > zero else zero


@njit(**_OPTS)
def relu_backward(y, dl_dy, dl_dx):
    zero = y.dtype.type(0)
    for i in prange(y.size):
        dl_dx[i] = dl_dy[i] if y[i] > zero else zero


@njit(**_OPTS)
def tanh_forward(x, y):
    # The lecture's form 2 / (1 + e^{-2x}) - 1, written with exp of -|2x| so
    # that large |x| neither overflows nor loses the sign.
    one = x.dtype.type(1)
    two = x.dtype.type(2)
    for i in prange(x.size):
        e = np.exp(-two * abs(x[i]))
        t = two / (one + e) - one
        y[i] = t if x[i] >= 0 else -t


@njit(**_OPTS)
def tanh_backward(y, dl_dy, dl_dx):
    one = y.dtype.type(1)
    for i in prange(y.size):
        dl_dx[i] = dl_dy[i] * (one - y[i] * y[i])


@njit(**_OPTS)
def sigmoid_forward(x, y):
    one = x.dtype.type(1)
    for i in prange(x.size):
        e = np.exp(-abs(x[i]))  # never overflows
        y[i] = one / (one + e) if x[i] >= 0 else e / (one + e)


@njit(**_OPTS)
def sigmoid_backward(y, dl_dy, dl_dx):
    one = y.dtype.type(1)
    for i in prange(y.size):
        dl_dx[i] = dl_dy[i] * y[i] * (one - y[i])


@njit(**_OPTS)
def threshold_forward(x, y):
    # The lecture's sigma(x) = 1 if x >= 0 else -1.
    one = x.dtype.type(1)
    for i in prange(x.size):
        y[i] = one if x[i] >= 0 else -one
