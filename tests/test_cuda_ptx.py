"""Every CUDA kernel compiled for a real GPU target, without a GPU.

The simulator runs Python, so it accepts code that NVVM or ptxas reject (an
unsupported function, a shared array of run-time size, a float64 that should
not be there). Here each raw kernel of nnumba.kernels.cuda is compiled to PTX for
compute capability 9.0 (H100) with the argument types that the kernel set's
example calls (:mod:`nnumba.kernels.cases`, the table the simulator tests use)
launch it with, recorded without running anything; where NVIDIA's JIT linker is
installed, the PTX is also assembled to sm_90 machine code, and its resource
report must show no register spills in float32 (the float64 variants exist for
gradient checks; the matmul's 8 x 8 register tile of doubles spills a few bytes
there). Runs wherever numba-cuda and NVIDIA's compiler libraries are installed
(``pip install "nnumba[cuda]"``), not under the simulator; skips elsewhere.
"""
import importlib
import importlib.util
import os
import re

import pytest

if importlib.util.find_spec("numba_cuda") is None:
    pytest.skip('numba-cuda is not installed (pip install "nnumba[cuda]")',
                allow_module_level=True)
if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    pytest.skip("the CUDA simulator is on: nothing is compiled for a GPU",
                allow_module_level=True)

from numba import cuda  # noqa: E402
from numba.cuda.dispatcher import CUDADispatcher  # noqa: E402

from nnumba.kernels import cases  # noqa: E402

CC = (9, 0)


def _nvvm_ready():
    try:
        cuda.compile_ptx(lambda a: None, "void(float32[::1])", cc=CC)
    except Exception as exc:  # noqa: BLE001 - NVVM missing or broken: say which
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return None


_WHY_NOT = _nvvm_ready()
if _WHY_NOT:
    pytest.skip(f"NVIDIA's NVVM compiler is not usable here ({_WHY_NOT})",
                allow_module_level=True)


def _kernels():
    """Every raw kernel of the CUDA set's modules (not device functions, which
    kernels inline)."""
    import nnumba.kernels.cuda as gpu
    found = set()
    for module in vars(gpu).values():
        if getattr(module, "__name__", "").startswith("nnumba.kernels.cuda.") and \
                hasattr(module, "__file__"):
            found |= {obj for obj in vars(module).values() if isinstance(obj, CUDADispatcher)
                      and not obj.targetoptions.get("device")}
    return found


SIGNATURES = cases.cuda_signatures()


def _assemble(ptx: str, name: str) -> str:
    """ptxas's resource report for sm_90 through nvJitLink, or "" without it."""
    try:
        from cuda.bindings import nvjitlink
    except ImportError:
        return ""
    options = [f"-arch=sm_{CC[0]}{CC[1]}", "-verbose"]
    handle = nvjitlink.create(len(options), options)
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), name)
        nvjitlink.complete(handle)
        log = bytearray(nvjitlink.get_info_log_size(handle))
        nvjitlink.get_info_log(handle, log)
        return log.decode(errors="replace")
    finally:
        nvjitlink.destroy(handle)


def test_the_example_calls_launch_every_kernel():
    missing = {k.py_func.__qualname__ for k in _kernels()} - \
        {k.py_func.__qualname__ for k in SIGNATURES}
    assert not missing, f"no example call launches {sorted(missing)} (nnumba.kernels.cases)"


def _signatures():
    for kernel, sigs in sorted(SIGNATURES.items(), key=lambda kv: kv[0].py_func.__qualname__):
        for i, sig in enumerate(sorted(sigs, key=str)):
            yield pytest.param(kernel, sig, id=f"{kernel.py_func.__module__.split('.')[-1]}."
                                               f"{kernel.py_func.__name__}-{i}")


@pytest.mark.parametrize("kernel, sig", list(_signatures()))
def test_kernel_compiles_for_sm90_without_spills(kernel, sig):
    name = kernel.py_func.__name__
    ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=CC,
                              fastmath=kernel.targetoptions.get("fastmath", False))
    assert f".target sm_{CC[0]}{CC[1]}" in ptx
    float32 = all(str(t).find("float64") < 0 for t in sig)
    if float32:  # float32 kernels must not fall back to double precision arithmetic
        assert not re.search(r"\b(?:add|mul|fma|div)\.[a-z.]*f64\b", ptx), \
            f"{name}{sig}: float64 arithmetic in a float32 kernel"
    report = _assemble(ptx, name)
    if report:
        spills = re.findall(r"(\d+) bytes spill stores", report)
        assert spills, report
        if float32:
            assert all(int(s) == 0 for s in spills), report
