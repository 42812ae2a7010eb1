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
    cache_file = losses._softmax_cross_entropy._cache._cache_file  # (the checked wrapper's kernel)
    assert cache_file._load_index()  # written under these sources: served
    own, sources = cache_file._source_stamp
    try:
        cache_file._source_stamp = (own, "other kernel sources")
        assert cache_file._load_index() == {}  # stale: numba compiles afresh
    finally:
        cache_file._source_stamp = (own, sources)


def _run_kernel(pkg_parent, cache_dir):
    import os
    import subprocess
    import sys
    code = ("import numpy as np; from gelu_kit.kernels import apply; "
            "y = np.empty(1); apply(np.ones(1), y); print(y[0])")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir),
           "PYTHONPATH": os.pathsep.join([str(pkg_parent), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300, check=True)
    return float(out.stdout)


def test_a_plugin_stamps_its_kernels_with_its_own_sources(tmp_path):
    """A plugin's cached kernel calling a formula from another file of the plugin:
    with stamp(globals(), root) an edit of the formula recompiles; numba alone would
    load the old machine code (the first plugin written from the docs alone met it)."""
    pkg = tmp_path / "src" / "gelu_kit"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "formulas.py").write_text("def f(v):\n    return 2.0 * v\n")
    (pkg / "kernels.py").write_text(
        "from pathlib import Path\n"
        "from numba import njit\n"
        "from nnumba.kernels.cache_stamp import stamp\n"
        "from .formulas import f\n"
        "_f = njit(inline='always')(f)\n\n"
        "@njit(cache=True)\n"
        "def apply(x, y):\n"
        "    for i in range(x.size):\n"
        "        y[i] = _f(x[i])\n\n"
        "stamp(globals(), Path(__file__).parent)\n")
    cache = tmp_path / "cache"
    assert _run_kernel(tmp_path / "src", cache) == 2.0
    assert _run_kernel(tmp_path / "src", cache) == 2.0   # served from the cache
    (pkg / "formulas.py").write_text("def f(v):\n    return 3.0 * v\n")
    assert _run_kernel(tmp_path / "src", cache) == 3.0   # not the stale 2.0


def test_stamp_refuses_a_root_that_is_not_a_folder(tmp_path):
    import pytest
    with pytest.raises(ValueError, match="not a folder"):
        cache_stamp.stamp({}, tmp_path / "missing")
