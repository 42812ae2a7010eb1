"""numba's disk cache follows every source of nnumba/kernels, not only the kernel's
own file: a kernel inlines formulas.py and calls its kernel set's helpers, and a
change there (an edit, a git pull) once left numba loading stale machine code
(CrossEntropy kept its old formula until the cache was cleared by hand)."""
import importlib
import pkgutil
import shutil
from pathlib import Path

import numpy as np

import nnumba.kernels.cpu as cpu
from nnumba.kernels import cache_stamp
from nnumba.kernels.cpu import losses

KERNELS = Path(cache_stamp.__file__).parent


def test_the_hash_covers_every_kernel_source(tmp_path):
    copy = tmp_path / "kernels"
    shutil.copytree(KERNELS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert cache_stamp.sources_hash(copy) == cache_stamp.SOURCES
    formulas = copy / "formulas.py"
    formulas.write_text(formulas.read_text() + "\n# an edit\n")
    assert cache_stamp.sources_hash(copy) != cache_stamp.SOURCES
    (copy / "cpu" / "new_helper.py").write_text("")
    assert cache_stamp.sources_hash(copy) != cache_stamp.SOURCES


def test_every_cached_cpu_kernel_is_stamped_with_the_sources():
    stamped = 0
    for info in pkgutil.iter_modules(cpu.__path__):
        module = importlib.import_module(f"{cpu.__name__}.{info.name}")
        for obj in vars(module).values():
            cache_file = getattr(getattr(obj, "_cache", None), "_cache_file", None)
            if cache_file is not None:
                assert cache_file._source_stamp[-1] == cache_stamp.SOURCES, obj
                stamped += 1
    assert stamped > 30


def test_numba_refuses_a_cache_written_under_other_sources():
    z, labels = np.zeros((2, 3), np.float32), np.array([0, 1])
    losses.softmax_cross_entropy(z, labels, np.float32(1), np.empty(2, np.float32),
                                 np.empty_like(z))  # compiled, or loaded from the cache
    cache_file = losses.softmax_cross_entropy._cache._cache_file
    assert cache_file._load_index()  # written under these sources: served
    own, sources = cache_file._source_stamp
    try:
        cache_file._source_stamp = (own, "other kernel sources")
        assert cache_file._load_index() == {}  # stale: numba compiles afresh
    finally:
        cache_file._source_stamp = (own, sources)
