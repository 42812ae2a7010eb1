"""Elementwise activations: ReLU, Tanh, Sigmoid, Identity and the lecture's threshold unit."""
from ..hookspecs import hookimpl
from ..kernels.cpu import activations as k
from .base import Layer


class _Elementwise(Layer):
    """An activation applied to every element; any input shape."""
    _kernel_forward = None
    _kernel_backward = None
    #: the CUDA twin kernels' name in nnumba.kernels.cuda.activations ("relu" for
    #: relu_forward / relu_backward); None: no CUDA kernels.
    _cuda_kernel = None
    examples = [({}, (3, 4)), ({}, (2, 3, 2, 2))]

    @classmethod
    def supports_cuda(cls):
        return cls._cuda_kernel is not None

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        type(self)._kernel_forward(x.reshape(-1), y.reshape(-1))
        self._y = y
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        dl_dx = self._buffer("dx", dl_dy.shape)
        type(self)._kernel_backward(self._y.reshape(-1), dl_dy.reshape(-1), dl_dx.reshape(-1))
        return dl_dx

    def _forward_cuda(self, x):
        from ..kernels.cuda import activations as kc
        y = self._device_buffer("y", x.shape)
        getattr(kc, f"{self._cuda_kernel}_forward")(x.reshape(x.size), y.reshape(y.size))
        self._y = y
        return y

    def _backward_cuda(self, dl_dy):
        if not self.needs_input_grad:
            return None
        from ..kernels.cuda import activations as kc
        dl_dx = self._device_buffer("dx", dl_dy.shape)
        n = dl_dy.size
        getattr(kc, f"{self._cuda_kernel}_backward")(self._y.reshape(n), dl_dy.reshape(n),
                                                     dl_dx.reshape(n))
        return dl_dx


class ReLU(_Elementwise):
    """max(0, x)."""
    _kernel_forward = k.relu_forward
    _kernel_backward = k.relu_backward
    _cuda_kernel = "relu"
    #: set by Sequential when the next layer, a max-pool, applies this ReLU itself
    deferred = False

    def _forward(self, x):
        return x if self.deferred else super()._forward(x)

    def compile_unit(self, input_shape):
        return ("ReLU",), 0.0 if self.deferred else 0.5  # deferred: the pool applies it

    def _backward(self, dl_dy):
        if self.deferred:
            return dl_dy if self.needs_input_grad else None
        return super()._backward(dl_dy)

    def _forward_cuda(self, x):
        return x if self.deferred else super()._forward_cuda(x)

    def _backward_cuda(self, dl_dy):
        if self.deferred:
            return dl_dy if self.needs_input_grad else None
        return super()._backward_cuda(dl_dy)


class Tanh(_Elementwise):
    """The lecture's tanh: 2 / (1 + e^{-2x}) - 1."""
    _kernel_forward = k.tanh_forward
    _kernel_backward = k.tanh_backward
    _cuda_kernel = "tanh"


class Sigmoid(_Elementwise):
    """1 / (1 + e^{-x})."""
    _kernel_forward = k.sigmoid_forward
    _kernel_backward = k.sigmoid_backward
    _cuda_kernel = "sigmoid"


class Threshold(_Elementwise):
    """The lecture's sigma(x) = 1 if x >= 0 else -1: forward only, no gradient."""
    has_gradient = False
    _kernel_forward = k.threshold_forward
    _cuda_kernel = "threshold"


class Identity(Layer):
    """y = x (a placeholder, and the linear model's activation)."""
    examples = [({}, (3, 4))]

    def _forward(self, x):
        return x

    def _backward(self, dl_dy):
        return dl_dy if self.needs_input_grad else None

    _forward_cuda = _forward  # the same on any array
    _backward_cuda = _backward


@hookimpl
def nnumba_register_layers():
    return {cls.type_name: cls for cls in (ReLU, Tanh, Sigmoid, Threshold, Identity)}
