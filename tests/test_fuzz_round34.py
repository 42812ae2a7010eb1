"""Fuzz round 34: the loss kit feeds class -1 again but spares a loss's ignore_index (and
warns of none that works), and a CSV label column written "1_0" is no index."""
import numpy as np
import pytest

from nnumba import LabelError, Loss, ShapeError, testing
from nnumba.device import to_host



def _log_softmax(z):
    s = z - z.max(1, keepdims=True)
    return s - np.log(np.exp(s).sum(1, keepdims=True))


class _CE(Loss):
    """Softmax cross-entropy with torch's ignore_index (default -100: none); a planted
    option check_negative=False forgets the `labels < 0` test."""
    target_dtype = "int64"
    check_negative = True
    examples = [({}, (5, 4), "classes")]

    def __init__(self, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.ignore_index = int(ignore_index)

    def config(self):
        return {"ignore_index": self.ignore_index, **super().config()}

    def _compute(self, y_hat, y, scale):
        if y_hat.ndim != 2:
            raise ShapeError(f"{type(self).__name__} loss: expected (N, C), got {y_hat.shape}")
        z, labels = to_host(y_hat).astype(np.float64), to_host(y)
        n, c = z.shape
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise LabelError(f"{type(self).__name__} loss: expected {n} integer labels")
        keep = labels != self.ignore_index
        low = (labels < 0) if self.check_negative else np.zeros(n, bool)
        if ((low | (labels >= c)) & keep).any():
            raise LabelError(f"{type(self).__name__} loss: labels must lie in [0, {c}) or be {self.ignore_index}")
        lp = _log_softmax(z)
        safe = np.where(keep, labels, 0)
        t = np.zeros((n, c))
        t[np.arange(n), safe] = 1
        losses = -lp[np.arange(n), safe] * keep
        grad = (scale * (np.exp(lp) - t) * keep[:, None]).astype(y_hat.dtype)
        return losses, self.device.to_device(grad)


class MinusOneReadsLastClass(_CE):
    """A planted bug: no `labels < 0` test, so numpy reads class -1 as class C-1."""
    check_negative = False


class IgnoreIndexC(_CE):
    """Correct: ignore_index = C (a padding class past the C real ones), legal in torch."""
    examples = [({}, (5, 4), "classes"), ({"ignore_index": 4}, (5, 4), "classes")]


def test_loss_kit_refuses_a_loss_that_reads_class_minus_one_as_the_last_class():
    """HEAD passes it: testing/losses.py:_outside (:131-142) no longer feeds class -1 to
    any loss (it was left to an ignore_index), so a loss with no ignore_index at all
    that indexes with -1 silently trains on class C-1 (it passed before a0c6ab3)."""
    torch = pytest.importorskip("torch")  # the reference
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 4))
    bad = MinusOneReadsLastClass()
    # the bug is real: -1 gives class 3's loss, where torch refuses target -1
    assert bad.forward(z, np.array([-1, 0, 1])) == pytest.approx(
        bad.forward(z, np.array([3, 0, 1])))
    with pytest.raises((IndexError, RuntimeError)):
        torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor([-1, 0, 1]))
    with pytest.raises(testing.ConformanceError, match="-1"):
        testing.check_loss(MinusOneReadsLastClass)


def test_loss_kit_passes_a_loss_whose_ignore_index_is_C():
    """HEAD fails it ("a class label 4 was accepted"): _outside feeds class C even where
    the example's ignore_index is C. The loss agrees with torch's cross_entropy."""
    torch = pytest.importorskip("torch")  # the reference
    rng = np.random.default_rng(1)
    z = rng.normal(size=(6, 4))
    y = np.array([4, 0, 1, 4, 3, 2])
    want = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y),
                                             ignore_index=4, reduction="sum").item()
    assert IgnoreIndexC(ignore_index=4, reduction="sum").forward(z, y) == pytest.approx(want)
    testing.check_loss(IgnoreIndexC)


def test_csv_label_column_with_an_underscore_is_no_index(tmp_path):
    """HEAD reads label_column "1_0" as column 10 (csv_table.py:87 int("1_0") == 10),
    where the reader refuses the same text in any field as "which Python reads as 10"."""
    from nnumba.data import load_arrays
    from nnumba.errors import NnumbaError
    rng = np.random.default_rng(0)
    rows = [",".join(f"{v:.3f}" for v in rng.normal(size=10)) + f",{i % 2},{i % 2}"
            for i in range(12)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    assert int("1_0") == 10  # Python's reading, the ambiguity
    with pytest.raises(NnumbaError, match="1_0"):
        load_arrays(path, label_column="1_0", test_fraction=0.5)


class IgnoreMinusOne(_CE):
    """Correct: torch's ignore_index=-1 (review 30's IgnoreCE, the kit's own example)."""
    examples = [({}, (5, 4), "classes"), ({"ignore_index": -1}, (6, 3), "classes")]


def test_loss_kit_does_not_warn_that_a_working_ignore_index_is_unused():
    """HEAD warns "the option 'ignore_index' changes no example's loss ... is it used?"
    (testing/losses.py check_options_matter/_effect :164-205): its targets never hold the
    ignored label. torch shows the option changes the loss of a batch that does."""
    torch = pytest.importorskip("torch")  # the reference
    import warnings
    z = np.random.default_rng(2).normal(size=(4, 3))
    y = np.array([-1, 0, 1, 2])
    with_opt = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y),
                                                 ignore_index=-1, reduction="sum").item()
    assert IgnoreMinusOne(ignore_index=-1, reduction="sum").forward(z, y) == \
        pytest.approx(with_opt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        testing.check_loss(IgnoreMinusOne)
