"""The fair suite starts both sides in one malloc state (benchmarks/peers.py,
settle_allocator): after it, repeated large allocations reuse the heap instead of
page-faulting fresh memory every time, as they did in a peer that had loaded its
data with np.load (PyTorch's lecture-CNN epoch ran ~1.5x as long)."""
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parents[1] / "benchmarks" / "peers.py"

# Minor page faults of 20 steps that each hold four blocks of 8 MB from malloc at once
# (as PyTorch's CPU tensors come), write them and free them, in a fresh process.
CHURN = """
import ctypes, importlib.util, json, resource, sys
spec = importlib.util.spec_from_file_location("peers", sys.argv[1])
peers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peers)
assert "nnumba" not in sys.modules  # a peer never imports nnumba by itself
if sys.argv[2] == "settle":
    peers.settle_allocator()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
for _ in range(20):
    blocks = [libc.malloc(8 << 20) for _ in range(4)]
    for block in blocks:
        ctypes.memset(block, 1, 8 << 20)
    for block in blocks:
        libc.free(block)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""


def _faults(mode):
    out = subprocess.run([sys.executable, "-c", CHURN, str(PEERS), mode], capture_output=True,
                         text=True, check=True, timeout=120)
    return json.loads(out.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc thresholds")
def test_settled_allocator_reuses_the_heap():
    pages = 20 * 4 * (8 << 20) // 4096
    plain, settled = _faults("plain"), _faults("settle")
    assert plain > pages // 2      # the premise: the heap trimmed and regrown every step
    assert settled < pages // 10   # after one large free, the heap's pages are reused
