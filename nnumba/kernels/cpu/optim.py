"""Parameter update kernels over the model's one flat parameter buffer."""
from numba import njit, prange


@njit(parallel=True, cache=True, fastmath=True)
def sgd_step(params, grads, velocity, lr, momentum, weight_decay):
    """PyTorch's SGD: g = grad + wd * p; v = mu * v + g; p -= lr * v.

    With momentum 0 the velocity is just g. Scalars arrive in the params' dtype."""
    for i in prange(params.size):
        g = grads[i] + weight_decay * params[i]
        v = momentum * velocity[i] + g
        velocity[i] = v
        params[i] -= lr * v
