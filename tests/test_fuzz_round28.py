"""Fuzz round 28: shapes-only mode (nnumba summary's, build("mlp")'s activation check)
is per thread, so a build in one thread no longer gives another thread's models
read-only zero-size weights (or leaves the mode on for good); an estimator's dtype
with an explicit byte order is refused by the estimator's own check, naming it."""
import threading

import numpy as np
import pytest

import nnumba
from nnumba.layers import Linear, shapes_only


def _in_thread(fn):
    """fn() run in another thread; its result, or the exception it raised."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    assert not t.is_alive(), "thread hung"
    return out


SPEC = [{"type": "Linear", "in_features": 4, "out_features": 3}]


def test_shapes_only_in_one_thread_does_not_change_models_built_in_another():
    """Finding 1: shapes-only mode is a process-wide flag.  Every
    nnumba.build("mlp") enters it briefly (mlp's activation check), and so do the
    estimators' partial_fit/warm_start checks and `summary`.  A model built in
    another thread meanwhile gets zero weights (no seed) or a raw
    "assignment destination is read-only" ValueError (a seed).
    Reference: the same builds with no other thread in shapes-only mode."""
    ref_seeded = nnumba.build(SPEC, seed=0).flat_params.copy()
    inside, release = threading.Event(), threading.Event()

    def holder():
        with shapes_only():
            inside.set()
            release.wait(30)
    t = threading.Thread(target=holder)
    t.start()
    try:
        assert inside.wait(30)
        seeded = _in_thread(lambda: nnumba.build(SPEC, seed=0).flat_params.copy())
        unseeded = _in_thread(lambda: nnumba.Sequential(Linear(4, 3)).flat_params.copy())
    finally:
        release.set()
        t.join(30)
    assert "error" not in seeded, f"build(seed=0) raised {seeded.get('error')!r}"
    np.testing.assert_array_equal(seeded["value"], ref_seeded)
    assert "error" not in unseeded, repr(unseeded.get("error"))
    assert np.any(unseeded["value"] != 0), "Linear(4, 3) built with all-zero weights"


def test_overlapping_shapes_only_in_two_threads_does_not_stick():
    """Finding 1, second face: thread A enters shapes-only, thread B enters, A
    leaves, B leaves -> B restores the value it saw on entry (True) and the mode
    stays on for the whole process: every layer built from then on has zero,
    read-only weights.  Reference: a build with the same seed before the race."""
    ref = nnumba.build(SPEC, seed=0).flat_params.copy()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def a():
        with shapes_only():
            a_in.set()
            b_in.wait(30)
        a_out.set()

    def b():
        a_in.wait(30)
        with shapes_only():
            b_in.set()
            a_out.wait(30)
    ts = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    try:
        after = nnumba.build(SPEC, seed=0).flat_params.copy()
    except ValueError as exc:  # HEAD: "assignment destination is read-only"
        pytest.fail(f"shapes-only mode stuck on after the threads ended: {exc}")
    finally:  # do not leave this thread broken for other tests
        import nnumba.layers.parameters as params
        params._mode.shapes_only = False
    np.testing.assert_array_equal(after, ref)


def test_estimator_dtype_with_explicit_byte_order():
    """Finding 2: dtype=">f4" passes the estimator's own dtype check (its name is
    float32) and then fails deep inside, after the data were validated and a
    model built, as "model: dtype must be float32 or float64, got dtype('>f4')".
    It should either train as float32 (predictions equal to dtype="float32"'s)
    or be refused by the estimator's check with a message about byte order."""
    pytest.importorskip("sklearn")
    from nnumba.sklearn import NNClassifier
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 4)), np.arange(30) % 3
    ref = NNClassifier(dtype="float32", epochs=2, random_state=0).fit(X, y)
    est = NNClassifier(dtype=">f4", epochs=2, random_state=0)
    try:
        est.fit(X, y)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        assert "byte order" in msg or "native" in msg, msg
        assert not msg.startswith("model:"), msg
        return
    np.testing.assert_allclose(est.predict_proba(X), ref.predict_proba(X), rtol=1e-6)
