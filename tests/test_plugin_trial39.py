"""Plugin trial 39 (an outside author's GLU layer, focal loss and model from the docs):
the kit's own one-thread note failed check_all under -W error::UserWarning, blaming the
layer; check_all raised a bare TypeError for a layer loaded by path; and it passed a
layer returning a keep=True buffer, which the next forward overwrote.

The first test sets NUMBA_NUM_THREADS=1 itself, in a subprocess: the finding shows only
with one numba thread.
"""
import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nnumba import testing
from nnumba.testing import ConformanceError

DOUBLE = '''
from nnumba import Layer


class {name}(Layer):
    """y = 2 x, an elementwise layer written against the kernel set."""

    examples = [({{}}, (3, 4))]

    def _forward(self, x):
        y = self._buffer("y", x.shape{keep})
        self.kernels.scale(x.reshape(x.size), 2.0, y.reshape(y.size))
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        self.kernels.scale(dl_dy.reshape(dl_dy.size), 2.0, dx.reshape(dx.size))
        return dx
'''


def test_kit_thread_warning_is_not_blamed_on_the_layer():
    """docs/plugins.md tells authors to run the kit with -W error::UserWarning. With one
    numba thread (a 1-core CI runner) check_all then fails for every layer with
    parameters, built-in Linear included, with a ConformanceError saying the kit's own
    'numba runs one thread' warning 'was raised by its code'."""
    code = ("import nnumba; from nnumba import testing; "
            "testing.check_all(nnumba.get_layer('Linear')); print('OK')")
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code],
                       capture_output=True, text=True, env=env, timeout=300)
    out = r.stdout + r.stderr
    assert "was raised by its code" not in out, out[-800:]


def test_check_all_on_a_layer_whose_module_is_not_in_sys_modules(tmp_path):
    """A layer loaded by path (importlib's module_from_spec + exec_module, which does not
    insert the module into sys.modules) crashes check_all with a bare
    TypeError: vars() argument must have __dict__ attribute (testing/stamps.py)."""
    path = tmp_path / "t39_double_by_path.py"
    path.write_text(textwrap.dedent(DOUBLE.format(name="T39DoubleByPath", keep="")))
    spec = importlib.util.spec_from_file_location("t39_double_by_path", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert "t39_double_by_path" not in sys.modules
    x = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(mod.T39DoubleByPath().forward(x), 2 * x)  # the layer works
    try:
        testing.check_all(mod.T39DoubleByPath)
    except ConformanceError:
        pass    # a clear kit error is acceptable; a bare TypeError is not


def test_check_all_refuses_an_output_from_a_keep_buffer(tmp_path):
    """docs/plugins.md: keep=True is 'for scratch that no caller sees'. A layer that returns
    such a buffer breaks what every built-in gives (an output survives the next forward
    when the model does not ask for reuse_buffers), yet check_all passes it."""
    path = tmp_path / "t39_double_keep.py"
    path.write_text(textwrap.dedent(DOUBLE.format(name="T39DoubleKeep", keep=", keep=True")))
    sys.path.insert(0, str(tmp_path))
    try:
        import t39_double_keep
    finally:
        sys.path.remove(str(tmp_path))
    layer = t39_double_keep.T39DoubleKeep()
    x1 = np.ones((3, 4), np.float32)
    y1 = layer.forward(x1)
    layer.forward(-x1)
    assert not np.array_equal(y1, 2 * x1)   # the first output was overwritten (the bug)
    with pytest.raises(ConformanceError):
        testing.check_all(t39_double_keep.T39DoubleKeep)
