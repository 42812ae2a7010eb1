"""Parameter update kernel over the model's one flat parameter buffer on the device."""
from numba import cuda

from ._grid import FLOATS, arr, launch_1d


@cuda.jit(cache=True)
def _sgd_step(params, grads, velocity, lr, momentum, weight_decay):
    for i in range(cuda.grid(1), params.size, cuda.gridsize(1)):
        g = grads[i] + weight_decay * params[i]
        v = momentum * velocity[i] + g
        velocity[i] = v
        params[i] -= lr * v


def sgd_step(params, grads, velocity, lr, momentum, weight_decay):
    """PyTorch's SGD, as the CPU twin: g = grad + wd * p; v = mu * v + g; p -= lr * v.
    Flat device arrays of one size; scalars in the params' dtype."""
    if params.size:
        launch_1d(_sgd_step, params.size)(params, grads, velocity, lr, momentum, weight_decay)


PTX_SIGNATURES = {
    "_sgd_step": [(arr(t, 1), arr(t, 1), arr(t, 1), t, t, t) for t in FLOATS],
}
