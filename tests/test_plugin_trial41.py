"""Plugin trial 41: an outside author's loss and named model, written from the docs.

- A "signs" loss that passed check_loss on (N, 1) targets failed `nnumba train`,
  which gives (N,) labels: the kit now tries both.
- check_model tried `classes` at 3 only, the docs' own spiral-net default: a
  builder ignoring the option passed.  It now tries two values."""
import contextlib
import io
import uuid

import numpy as np
import pytest

import nnumba
from nnumba import LabelError, Loss, ShapeError, hookimpl, testing
from nnumba.device import to_host
from nnumba.models import NamedModel


@contextlib.contextmanager
def plugin(**hooks):
    """Register an object with the given hook functions under a fresh name."""
    name = "t41" + uuid.uuid4().hex[:8]
    obj = type(name, (), {k: staticmethod(hookimpl(v)) for k, v in hooks.items()})
    nnumba.register_plugin(obj, name)
    try:
        yield name
    finally:
        nnumba.unregister_plugin(name)


# ---------------------------------------------------------------- F1
class SquaredHinge(Loss):
    """max(0, 1 - y y_hat)^2 for labels in {-1, +1}; targets shaped like the predictions."""

    examples = [({}, (5, 1), "signs"), ({"reduction": "sum"}, (4, 1), "signs")]

    def _compute(self, y_hat, y, scale):
        name = type(self).__name__
        z, t = to_host(y_hat).astype(np.float64), to_host(y)
        if t.shape != z.shape:
            raise ShapeError(f"{name} loss: expected targets of shape {z.shape}, got {t.shape}")
        if not np.all((t == 1) | (t == -1)):
            bad = t[(t != 1) & (t != -1)].ravel()[0]
            raise LabelError(f"{name} loss: labels must be -1 or +1, got {bad}")
        t = t.astype(np.float64)
        m = np.maximum(0, 1 - t * z)
        losses = (m * m).reshape(len(z), -1).sum(1)
        k = z[0].size
        if self.reduction == "mean":
            losses, scale = losses / k, scale / k
        return losses, self.device.to_device((scale * (-2 * m * t)).astype(y_hat.dtype))


def test_f1_a_signs_loss_that_passes_check_loss_trains_with_nnumba_train():
    """check_loss feeds a "signs" loss (N, 1) targets for (N, 1) predictions; nnumba train
    --loss X --classes NEG,POS feeds (N,). One of the two must change: either the kit
    refuses this loss (it would fail on the command line), or the command trains with it."""
    try:
        testing.check_loss(SquaredHinge)
    except testing.ConformanceError:
        return  # fixed in the kit: it now tells the author about the (N,) targets
    from nnumba.cli import main
    with plugin(nnumba_register_losses=lambda: {"SquaredHinge": SquaredHinge}):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(["train", "--model", "logreg", "--loss", "SquaredHinge",
                       "--classes", "0,1", "--train-size", "200", "--test-size", "50",
                       "--epochs", "1"])
    assert rc == 0, err.getvalue()[-400:]


# ---------------------------------------------------------------- F2
def _mlp(inputs: int = 4, hidden: int = 8, classes: int = 3):
    """An MLP that forgets its classes option (always 3 outputs)."""
    return [{"type": "Linear", "in_features": inputs, "out_features": hidden},
            {"type": "ReLU"},
            {"type": "Linear", "in_features": hidden, "out_features": 3}]


def test_f2_check_model_catches_a_model_that_ignores_classes_whose_default_is_3():
    """docs/plugins.md: check_model checks that, where a model takes classes, classes sets its
    output width. It probes classes=3 only, which is the docs' own spiral-net default."""
    named = NamedModel(_mlp, input_shape=lambda inputs=4, **_: (inputs,))
    with plugin(nnumba_register_models=lambda: {"t41-ignores-classes": named}):
        assert nnumba.build("t41-ignores-classes", classes=10, seed=0).output_shape((4,)) == (3,)
        with pytest.raises(testing.ConformanceError, match="classes"):
            testing.check_model("t41-ignores-classes")
