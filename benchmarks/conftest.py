"""Shared benchmark set-up: ratios against the peer printed at the end of the run.

Each benchmark sets ``benchmark.group`` to the job and ``extra_info["impl"]``
to "nnumba" or the peer's name; the summary divides medians within a group.
"""
import os

import nnumba  # noqa: F401  first, so its thread settings precede numpy's BLAS

import numpy as np
import pytest

_results = {}


def threads() -> int:
    import numba
    return numba.get_num_threads()


@pytest.fixture
def torch_threads():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(threads())  # the same thread count as nnumba
    return torch


@pytest.fixture
def record(benchmark):
    """record(group, impl): label this benchmark for the ratio table."""
    def _record(group, impl, **info):
        benchmark.group = group
        benchmark.extra_info.update(impl=impl, threads=threads(), **info)
        _results.setdefault(group, {})[impl] = benchmark
    return _record


def pytest_terminal_summary(terminalreporter):
    lines = []
    for group, impls in sorted(_results.items()):
        ours = impls.get("nnumba")
        stats = {k: getattr(b, "stats", None) for k, b in impls.items()}
        if ours is None or stats.get("nnumba") is None:
            continue
        mine = stats["nnumba"].stats.median
        for impl, s in stats.items():
            if impl != "nnumba" and s is not None:
                lines.append(f"{group:<28} nnumba {mine * 1e3:9.2f} ms   {impl} "
                             f"{s.stats.median * 1e3:9.2f} ms   ratio {mine / s.stats.median:5.2f}x")
    if lines:
        terminalreporter.write_sep("-", "nnumba / peer, medians (lower is better)")
        for line in lines:
            terminalreporter.write_line(line)


def fashion_sized(n=60_000, seed=0):
    """Real Fashion-MNIST when installed, else random data of the same size."""
    try:
        from nnumba.data import load_dataset
        data = load_dataset("fashion-mnist")
        return data.x_train[:n], data.y_train[:n]
    except (OSError, ValueError):
        rng = np.random.default_rng(seed)
        return (rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n))


QUICK = os.environ.get("NNUMBA_BENCH_QUICK") == "1"
