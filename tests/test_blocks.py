"""run_blocks: the shared parallel loop that calls a kernel body through its
address (nnumba.kernels.cpu.blocks)."""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from numba import njit

from nnumba.kernels.cpu.blocks import run_blocks


@njit
def _count(i, hits, scale, offset):
    hits[i] += scale * i + offset


@njit
def _rows(i, a, out, flag):
    out[i] = a[i].sum() if flag else -a[i].sum()


@njit
def _allocate(i, n, out):
    out[i] = np.empty(n, np.float64).size


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000])
def test_every_block_runs_once(n):
    hits = np.zeros(max(n, 1), np.int64)
    run_blocks(_count, n, hits, 3, 1)
    expected = 3 * np.arange(max(n, 1)) + 1
    expected[n:] = 0
    assert np.array_equal(hits, expected)


def test_argument_types_and_thread_counts():
    a = np.arange(60, dtype=np.float32).reshape(6, 10)
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        saved = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            for flag in (True, False):
                out = np.zeros(6, np.float32)
                run_blocks(_rows, 6, a, out, flag)
                assert np.array_equal(out, a.sum(axis=1) * (1 if flag else -1))
        finally:
            numba.set_num_threads(saved)
    out64 = np.zeros(6)
    run_blocks(_rows, 6, a.astype(np.float64), out64, True)  # a second specialisation
    assert np.array_equal(out64, a.sum(axis=1))


def test_a_failing_block_raises():
    out = np.zeros(4, np.int64)
    run_blocks(_allocate, 4, 5, out)
    assert out.tolist() == [5] * 4
    with pytest.raises(MemoryError, match="_allocate"):
        run_blocks(_allocate, 4, 1 << 60, out)


def test_the_cached_body_runs_in_a_fresh_process(tmp_path):
    """The address comes from numba's disk cache in the second process: same result,
    nothing compiled."""
    script = textwrap.dedent("""
        import numpy as np
        from nnumba.kernels.cpu import pool
        x = np.random.default_rng(0).random((3, 4, 9, 9), dtype=np.float32)
        out, am = np.empty((3, 4, 3, 3), np.float32), np.empty((3, 4, 3, 3), np.int32)
        pool.relu_maxpool2d_forward(x - 0.5, 3, 3, out, am)
        print(pool._maxpool_rows_block.stats.cache_hits.get(
            next(iter(pool._maxpool_rows_block.signatures)), 0), out.sum(), am.sum())
    """)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, check=True).stdout.split() for _ in range(2)]
    assert runs[0][0] == "0" and runs[1][0] == "1"
    assert runs[0][1:] == runs[1][1:]
