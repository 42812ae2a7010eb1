"""Mini-batching: coverage, order, reproducibility, views versus copies."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnumba.data import batches, iterate
from nnumba.errors import DTypeError, NnumbaError, ShapeError, SpecError


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 300), batch_size=st.integers(1, 64), shuffle=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_every_index_exactly_once_and_sizes(n, batch_size, shuffle, seed):
    parts = list(batches(n, batch_size, shuffle=shuffle, rng=np.random.default_rng(seed)))
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))
    assert [len(p) for p in parts[:-1]] == [batch_size] * (len(parts) - 1)
    assert len(parts[-1]) == (n % batch_size or batch_size)  # the short batch is kept


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 300), batch_size=st.integers(1, 64))
def test_drop_last_drops_only_the_short_batch(n, batch_size):
    parts = list(batches(n, batch_size, drop_last=True, shuffle=True, rng=np.random.default_rng(0)))
    assert len(parts) == n // batch_size and all(len(p) == batch_size for p in parts)
    kept = np.concatenate(parts) if parts else np.array([], int)
    assert len(np.unique(kept)) == len(kept) == n - n % batch_size


def test_sequential_order():
    assert [b.tolist() for b in batches(7, 3)] == [[0, 1, 2], [3, 4, 5], [6]]


def test_shuffle_is_reproducible_and_differs_from_sequential():
    a = np.concatenate(list(batches(1000, 32, shuffle=True, rng=np.random.default_rng(7))))
    b = np.concatenate(list(batches(1000, 32, shuffle=True, rng=np.random.default_rng(7))))
    c = np.concatenate(list(batches(1000, 32, shuffle=True, rng=np.random.default_rng(8))))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, np.arange(1000)) and not np.array_equal(a, c)
    rng = np.random.default_rng(7)  # one generator, two epochs: two different orders
    first, second = (np.concatenate(list(batches(1000, 32, shuffle=True, rng=rng))) for _ in range(2))
    assert not np.array_equal(first, second)


def test_iterate_views_in_order_copies_when_shuffled():
    x = np.arange(50, dtype=np.float32).reshape(10, 5)
    y = np.arange(10)
    pairs = list(iterate(x, y, 4, shuffle=False))
    assert [len(yb) for _, yb in pairs] == [4, 4, 2]
    assert all(np.shares_memory(xb, x) and np.shares_memory(yb, y) for xb, yb in pairs)
    shuffled = list(iterate(x, y, 4, shuffle=True, rng=np.random.default_rng(3)))
    for xb, yb in shuffled:
        assert not np.shares_memory(xb, x)
        np.testing.assert_array_equal(xb[:, 0], yb * 5)  # rows stay paired with their labels
    assert sorted(np.concatenate([yb for _, yb in shuffled]).tolist()) == list(range(10))
    assert len(list(iterate(x, y, 4, drop_last=True))) == 2


@pytest.mark.parametrize("call, message", [
    (lambda: batches(10, 0), "batches: batch_size must be an integer >= 1, got 0"),
    (lambda: batches(0, 4), "at least one example"),
    (lambda: batches(10, 4, shuffle=True), "needs rng"),
    (lambda: iterate(np.zeros(3), np.zeros(4), 2), "3 examples but y has 4"),
    (lambda: iterate(np.zeros(3), np.zeros(3), -1), "batch_size must be an integer >= 1"),
])
def test_bad_arguments_fail_at_the_call(call, message):
    with pytest.raises(NnumbaError, match=message):
        call()  # not only at the first next()


@pytest.mark.parametrize("call, error, message", [
    # int() used to take these, or numpy to fail deep inside with a raw error
    (lambda: batches(10.5, 4), SpecError, r"batches: n must be an integer >= 0, got 10.5"),
    (lambda: batches(10, 2.5), SpecError, r"batches: batch_size must be an integer >= 1, "
                                          r"got 2.5"),
    (lambda: batches(10, "4"), SpecError, r"batch_size must be an integer >= 1, got '4'"),
    (lambda: batches(10, True), SpecError, r"batch_size must be an integer >= 1, got True"),
    (lambda: batches(None, 4), SpecError, r"batches: n must be an integer"),
    (lambda: batches(-3, 4), SpecError, r"batches: n must be an integer >= 0, got -3"),
    (lambda: batches(10, 4, shuffle=True, rng=7), SpecError, r"needs rng, a "
                                                             r"np.random.Generator.*got 7"),
    (lambda: batches(10, 4, shuffle="no"), SpecError, r"shuffle must be true or false, "
                                                      r"got 'no'"),
    (lambda: batches(10, 4, drop_last="yes"), SpecError, r"drop_last must be true or false"),
    (lambda: iterate(np.zeros(3), 3, 2), DTypeError, r"iterate: y must be a numpy array "
                                                     r"of samples \(N, ...\), got 3"),
    (lambda: iterate(None, np.zeros(3), 2), DTypeError, r"x must be a numpy array.*None"),
    (lambda: iterate(np.array(1.0), np.zeros(1), 2), DTypeError, r"x must be.*shape \(\)"),
    (lambda: iterate(np.zeros(3), np.zeros(3), 2, shuffle=1), SpecError, r"shuffle must be"),
    (lambda: iterate(np.zeros(3), np.zeros(3), 2.0), SpecError, r"batch_size must be an "
                                                               r"integer >= 1, got 2.0"),
    (lambda: iterate(np.zeros(0), np.zeros(0), 2), ShapeError, r"at least one example"),
])
def test_bad_arguments_are_nnumba_errors_naming_them(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_numpy_integers_are_sizes():
    assert [b.tolist() for b in batches(np.int64(5), np.int32(2))] == [[0, 1], [2, 3], [4]]
    x = np.arange(6)
    got = [xb.tolist() for xb, _ in iterate(x, x, np.uint8(4), np.True_,
                                           np.random.default_rng(0), drop_last=np.False_)]
    assert sorted(sum(got, [])) == list(range(6)) and [len(b) for b in got] == [4, 2]
