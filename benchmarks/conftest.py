"""The fair benchmark suite's machinery: peers in fresh processes, taking turns.

Every peer (PyTorch, scikit-learn, numpy's BLAS) runs in a process of its own
(``benchmarks/peers.py``), started with the environment this process had
*before* nnumba was imported and with nnumba's thread count, and never imports
nnumba.  nnumba's side is timed here by pytest-benchmark, so
``--benchmark-autosave`` / ``--benchmark-compare`` work on nnumba's numbers;
:func:`turns` asks the peer for one round before each of nnumba's rounds
(B, A, B, A, ...), and the peer's own times land in ``extra_info``.

At the end, a table of medians and their ratio (nnumba / peer: lower is
better) prints with the CPU model, the thread count and numba's threading
layer; ``--bench-report FILE`` also writes it as Markdown (the README's table
comes from one such run) and ``--bench-plot FILE.png`` draws it (:mod:`plot`).
"""
import os

PEER_ENV = dict(os.environ)  # before nnumba is imported: what a peer would get alone

import datetime  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import nnumba  # noqa: E402,F401
from nnumba.kernels.cpu import blas  # noqa: E402
from peers import settle_allocator  # noqa: E402

settle_allocator()  # as every peer does (peers.py): the same malloc state on both sides

HERE = Path(__file__).resolve().parent
QUICK = os.environ.get("NNUMBA_BENCH_QUICK") == "1"
GAP = 0.05  # seconds of quiet between turns (must match peers.GAP)
_rows = []          # one dict per benchmark with a peer, for the table
_profiles = []      # per-layer tables (bench_layers.py)
_machine = {}


def threads() -> int:
    import numba
    return numba.get_num_threads()


def cpu_model() -> str:
    """The CPU's model name, with its family and model numbers (a VM's name can be
    as vague as "AMD EPYC")."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get("model name", platform.machine())
    if "cpu family" in fields:
        name += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    return name


def threading_layer() -> str:
    """numba's threading layer; it is chosen when the first parallel kernel runs."""
    import numba
    try:
        return numba.threading_layer()
    except ValueError:
        return "(not started)"


def pytest_addoption(parser):
    parser.addoption("--bench-report", default=None,
                     help="write the nnumba / peer table as Markdown to this file")
    parser.addoption("--bench-plot", default=None,
                     help="draw the ratios and their targets into this PNG file")


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["cpu_model"] = cpu_model()
    machine_info["nnumba_threads"] = threads()


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ---- peers ----------------------------------------------------------------------------

class PeerError(RuntimeError):
    pass


class Peer:
    """One peer job in its own process; ``round()`` runs one timed round there."""

    def __init__(self, name: str, job: dict, *, env=None):
        self.name = name
        job = {"threads": threads(), **job}
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "peers.py"), json.dumps(job)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=PEER_ENV if env is None else env, cwd=str(HERE))
        self.times: list[float] = []
        self.result: dict = {}
        self._read("ready")

    def _read(self, key):
        line = self.proc.stdout.readline()
        if not line:
            raise PeerError(f"peer {self.name} exited ({self.proc.wait()}) before {key!r}")
        reply = json.loads(line)
        if key not in reply:
            raise PeerError(f"peer {self.name}: expected {key!r}, got {reply}")
        return reply

    def round(self):
        self.proc.stdin.write("round\n")
        self.proc.stdin.flush()
        reply = self._read("seconds")
        self.times.append(reply["seconds"])
        self.result = reply.get("result", {})
        # The peer's threads may spin-wait a little after its round; nnumba's round
        # waits as long as the peer waits before its own (peers.py): the same gap.
        time.sleep(GAP)

    def close(self) -> dict:
        """Stop the process; returns the per-layer profile if the job kept one."""
        if self.proc.poll() is not None:
            return {}
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        try:
            profile = self._read("profile")["profile"]
        except PeerError:
            profile = {}
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        return profile

    @property
    def median(self) -> float:
        return float(np.median(self.times))


class FreshPeer(Peer):
    """A peer whose every round runs in a process of its own (started, warmed up,
    one timed round, stopped).  On a shared VM one process can run a whole third
    slower than the next, all its rounds alike (thread placement): one long-lived
    process a side compares two such draws, and 15 rounds cannot resolve 5 %."""

    def __init__(self, name: str, job: dict, **kwargs):
        self.name, self._job, self._kwargs = name, job, kwargs
        self.times, self.result = [], {}

    def round(self):
        peer = Peer(self.name, self._job, **self._kwargs)
        try:
            peer.round()
        finally:
            peer.close()
        self.times += peer.times
        self.result = peer.result

    def close(self) -> dict:
        return {}


@pytest.fixture
def peers():
    """peers(name, job) starts a peer; every one started is closed after the test."""
    started = []

    def start(name, job, fresh=False, **kwargs):
        peer = (FreshPeer if fresh else Peer)(name, job, **kwargs)
        started.append(peer)
        return peer
    yield start
    for peer in started:
        peer.close()


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    """files(**arrays) writes each array to a .npy file a peer can load; returns paths."""
    folder = tmp_path_factory.mktemp("peer-data")
    written = []

    def write(**arrays):
        paths = {}
        for name, array in arrays.items():
            path = folder / f"{name}-{len(written)}.npy"
            np.save(path, np.ascontiguousarray(array), allow_pickle=False)
            written.append(path)
            paths[name] = str(path)
        return paths
    return write


def turns(benchmark, group, ours, peer, rounds, **info):
    """Time ``ours()`` for ``rounds`` rounds, ``peer.round()`` running before each
    (not timed here), and record both for the table.  Returns ours' last result."""
    benchmark.group = group
    result = benchmark.pedantic(ours, setup=peer.round if peer else None, rounds=rounds,
                                iterations=1)
    record(benchmark, group, peer, **info)
    return result


def record(benchmark, group, peer, compare=None, **info):
    """Label a benchmark for the table; ``peer`` may be None (nnumba alone).
    ``compare``: another Peer whose own times stand in for nnumba's (a peer
    beside nnumba against the same peer alone, in bench_side_effects)."""
    benchmark.group = group
    layer = threading_layer()
    benchmark.extra_info.update(impl="nnumba" if compare is None else compare.name,
                                threads=threads(), threading_layer=layer, cpu=cpu_model(),
                                gemm=blas.describe(),
                                **info)
    _machine.update(threads=threads(), threading_layer=layer)
    stats = getattr(benchmark, "stats", None)
    if peer is None or stats is None or not peer.times:
        return
    ours = stats.stats.median if compare is None else compare.median
    benchmark.extra_info.update(peer=peer.name, peer_times=peer.times,
                                peer_median=peer.median, ratio=ours / peer.median,
                                peer_result=peer.result)
    _rows.append({"group": group, "ours": ours,
                  "ours_name": "nnumba" if compare is None else compare.name,
                  "peer": peer.name, "peer_median": peer.median, "ratio": ours / peer.median,
                  "rounds": len(stats.stats.data), **info})


def _seconds(s: float) -> str:
    return f"{s:.2f} s" if s >= 1 else f"{s * 1e3:.1f} ms" if s >= 1e-3 else f"{s * 1e6:.0f} µs"


def report_lines() -> list[str]:
    head = (f"{cpu_model()}, {_machine.get('threads', threads())} threads, numba threading "
            f"layer {_machine.get('threading_layer', threading_layer())}, GEMMs on "
            f"{blas.describe()}, numba "
            f"{__import__('numba').__version__}, numpy {np.__version__}, "
            f"{datetime.date.today().isoformat()}")
    lines = [f"Medians of interleaved rounds (nnumba, peer, nnumba, ...); every peer in a "
             f"fresh process of its own. {head}. {_split_speedup()}", "",
             "| job | timed | against | ratio | note |", "| --- | --- | --- | --- | --- |"]
    for row in _rows:
        lines.append(f"| {row['group']} | {row['ours_name']} {_seconds(row['ours'])} | "
                     f"{row['peer']} {_seconds(row['peer_median'])} | {row['ratio']:.2f}× | "
                     f"{row.get('note', '')} |")
    return lines


def _split_speedup() -> str:
    """How much faster nnumba's GEMM ran split over the threads than on one, in this
    process (a conv layer's shape).  On the development VM about one process in
    seven ran it no faster than one thread, all its life long, whatever the threading
    layer: every nnumba time of such a run is slower (docs/performance.md)."""
    if threads() < 2 or blas.address(np.float32) is None:
        return ""
    rng = np.random.default_rng(0)
    a, b = rng.random((192, 1601), np.float32), rng.random((1601, 729), np.float32)
    c = np.empty((192, 729), np.float32)

    def best(parts):
        times = []
        for _ in range(15):
            start = time.perf_counter()
            blas._gemm_split(blas.address(np.float32), a, 111, b, 111, c, 0.0, parts, False)
            times.append(time.perf_counter() - start)
        return float(np.median(times))
    ratio = best(1) / best(threads())
    return (f"nnumba's GEMM split over {threads()} threads ran {ratio:.2f}× as fast as on "
            f"one in this process" + (" (a slow draw of the machine)" if ratio < 1.3 else "")
            + ".")


def pytest_terminal_summary(terminalreporter, config):
    if not _rows:
        return
    lines = report_lines()
    for table in _profiles:
        lines += [""] + table
    terminalreporter.write_sep("-", "nnumba / peer, ratio of medians (lower is better)")
    for line in lines:
        terminalreporter.write_line(line)
    out = config.getoption("--bench-report")
    if out:
        Path(out).write_text("\n".join(lines) + "\n")
    picture = config.getoption("--bench-plot")
    if picture:
        from plot import plot_ratios
        why = plot_ratios(_rows, picture, f"{cpu_model()}, {_machine.get('threads')} threads, "
                                          f"numba on {_machine.get('threading_layer')}, "
                                          f"{datetime.date.today().isoformat()}")
        terminalreporter.write_line(why or f"ratios drawn in {picture}")


# ---- data ---------------------------------------------------------------------------------

def fashion_sized(n=60_000, seed=0):
    """Real Fashion-MNIST when installed, else random data of the same size."""
    try:
        from nnumba.data import load_dataset
        data = load_dataset("fashion-mnist")
        return data.x_train[:n], data.y_train[:n]
    except (OSError, ValueError):
        rng = np.random.default_rng(seed)
        return (rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n))


@pytest.fixture(scope="session")
def quick(request):
    """Small sizes: --benchmark-disable (CI's smoke run) or NNUMBA_BENCH_QUICK=1."""
    return QUICK or request.config.getoption("benchmark_disable")


@pytest.fixture(scope="session")
def sgemm_peak(request, quick):
    """numpy's float32 GEMM rate on this machine (GFLOP/s), best of 5 rounds of a
    2048^3 product in a fresh process: the FP32 peak the CNN is measured against.
    Without OPENBLAS_CORETYPE: a core pinned there (Haswell, AVX2, on the machines
    nnumba is developed on) is not the machine's peak on an AVX-512 CPU."""
    if quick:
        return None
    size = 2048
    env = {k: v for k, v in PEER_ENV.items() if k != "OPENBLAS_CORETYPE"}
    peer = Peer("numpy sgemm", {"kind": "numpy-sgemm", "shape": [size] * 3, "repeat": 3},
                env=env)
    try:
        for _ in range(5):
            peer.round()
    finally:
        peer.close()
    return 2 * size ** 3 * 3 / min(peer.times) / 1e9


def profile_table(title, labels, ours: dict, theirs: dict) -> list[str]:
    """Per-layer medians, nnumba beside the peer, as Markdown rows (also printed at
    the end of the run)."""
    lines = [f"Per layer, {title} (medians):", "",
             "| layer | pass | nnumba | torch | ratio |", "| --- | --- | --- | --- | --- |"]
    for key, times in ours.items():
        index, what = key.split()
        mine = float(np.median(times))
        other = theirs.get(key)
        if other:
            peer = float(np.median(other))
            lines.append(f"| {index} {labels[index]} | {what} | {_seconds(mine)} | "
                         f"{_seconds(peer)} | {mine / peer:.2f}× |")
        else:
            lines.append(f"| {index} {labels[index]} | {what} | {_seconds(mine)} | – | – |")
    _profiles.append(lines)
    return lines
