"""A correct one-parameter layer for the kit tests to break in one place each:
y = a * x.  Imported by the kit's fuzz tests (pytest puts tests/ on the path)."""
import numpy as np

import nnumba


class _Scale(nnumba.Layer):
    """y = a * x with one trainable factor a; a correct layer the slips below alter."""
    examples = [({}, (3, 4))]

    def __init__(self):
        super().__init__()
        self.a = self.add_param("a", (1,))

    def reset_parameters(self, rng):
        self.a.value[...] = 1 + 0.1 * rng.standard_normal(1)

    def _forward(self, x):
        self._x = x
        y = self._buffer("y", x.shape)
        np.multiply(x, self.a.value[0], out=y)
        return y

    def _backward(self, dl_dy):
        self.a.grad[0] += np.sum(dl_dy * self._x)
        dx = self._buffer("dx", dl_dy.shape)
        np.multiply(dl_dy, self.a.value[0], out=dx)
        return dx


def _variant(name, **methods):
    return type(name, (_Scale,), {"examples": _Scale.examples, **methods})
