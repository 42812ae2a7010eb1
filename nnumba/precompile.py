"""Cold-cache JIT compilation spread over processes (``NNUMBA_PRECOMPILE=0``: off).

Numba compiles one function at a time (one lock per process), and the kernels
of a CNN take tens of seconds to compile from a cold cache on one core.  They
are independent, though: each layer's kernels can be compiled in another
process, which leaves them in numba's on-disk cache, and the first training
step then loads them from there in milliseconds.

``precompile(model, loss, x, y)`` does that before the first step: the layers
are grouped by the kernels they share (``Layer.compile_unit``), the groups are
spread over this process and ``cores - 1`` workers (``python -m
nnumba.precompile``, a JSON job on stdin), and every process runs each of its
layers forward and backward once on a two-sample batch of zeros, which
compiles exactly the specialisations training will use.  A marker file beside
numba's cache says a model has been precompiled, so a warm start spawns
nothing.  Anything that goes wrong in a worker only costs time: the main
process then compiles what is missing as it would have anyway.
"""
from __future__ import annotations

import atexit
import copy
import functools
import hashlib
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import types
from contextlib import suppress
from pathlib import Path

import numpy as np

from .distributed.threads import available_cores
from .layers.validation import compile_unit_of, integer
from .registry import RUNTIME_DISTRIBUTION, RegistryError, get_registry, register_plugin

#: below this many estimated seconds of compilation, workers don't pay for themselves
MIN_SECONDS = 4.0
#: what starting a worker costs (interpreter, numpy, numba, nnumba), in seconds
WORKER_START = 1.0
#: what this process compiles besides its layers (the loss, the update, the batch
#: gather and the gradient zeroing), in seconds
MAIN_EXTRA = 1.5


def precompile(model, loss, x, y, processes: int | None = None, optimizer=None,
               on_start=None, checks=None, batch_size: int = 3) -> dict:
    """Compile the CPU kernels one training step of ``model`` on mini-batches of
    ``batch_size`` from ``x``, ``y`` (and ``optimizer``'s update) needs, spread
    over ``processes`` (default: the cores this process may use) when the cache is cold;
    ``on_start(processes)`` is called first when it does.  ``checks()``, the
    caller's own (a trainer's target checks), runs once the workers have their
    jobs, or at once when there are none; an error there stops the workers.
    Returns: ``{"processes", "ok" (every process compiled its part), "seconds"}``,
    or ``{"skipped": reason}``."""
    batch_size = integer("precompile", "batch_size", batch_size)
    processes = processes or available_cores()
    x, y = np.asarray(x), np.asarray(y)
    try:
        prepared = _prepare(model, loss, x, y, processes, batch_size)
        if isinstance(prepared, str):
            if checks is not None:
                checks()
            return {"skipped": prepared}
        return _run(model, loss, x, y, processes, optimizer, on_start, checks, batch_size,
                    *prepared)
    finally:
        dismiss()  # workers started ahead that got no job


def prestart(processes: int | None = None):
    """Start now the workers a cold precompile takes, so that their start (mostly
    importing numba, ~0.5 s) overlaps the caller's own work, such as loading the
    data.  They wait for a job: precompile() sends it or dismisses them, and a
    worker whose parent exits reads end of file and exits."""
    if os.environ.get("NNUMBA_PRECOMPILE", "1") == "0":
        return
    while len(_waiting) < (processes or available_cores()) - 1:
        _waiting.append(_spawn())


def dismiss():
    """Stop the workers prestart() started that wait for a job."""
    while _waiting:
        proc = _waiting.pop()
        proc.kill()
        proc.communicate()


def _prepare(model, loss, x, y, processes, batch_size):
    """(recipe, shapes, units, marker) where a precompile would run, else why not."""
    if os.environ.get("NNUMBA_PRECOMPILE", "1") == "0":
        return "NNUMBA_PRECOMPILE=0"
    if model.device.name != "cpu":
        return f"the model is on {model.device.name} (this compiles CPU kernels)"
    recipe = _recipe(model)
    if isinstance(recipe, str):
        return recipe
    shapes = _input_shapes(model, x.shape[1:])
    units = _units(model, shapes)
    if processes < 2 or len(units) < 2 or sum(s for s, _ in units.values()) < MIN_SECONDS:
        return "not worth a second process"
    marker = _marker(model, loss, x, y, batch_size)
    if marker is not None and marker.exists():
        return "precompiled before"
    return recipe, shapes, units, marker


def _run(model, loss, x, y, processes, optimizer, on_start, checks, batch_size, recipe,
         shapes, units, marker):
    """The workers' parts sent, the checks run, this process's part compiled, every
    worker waited for."""
    start = time.perf_counter()
    plan = _plan(units, processes)
    if on_start is not None:
        on_start(1 + sum(1 for layers in plan[1:] if layers))
    job = {**recipe, "dtype": model.dtype.name, "input_shape": list(x.shape[1:]),
           "input_grad": bool(getattr(model, "input_grad", False))}
    workers = [_start_worker({**job, "layers": layers}) for layers in plan[1:] if layers]
    try:
        if checks is not None:
            checks()
        try:
            twin = model.copy().train()  # the real model stays untouched
            out = warm_layers(twin, plan[0], shapes)
            if out is not None:  # the model's last step ran here: the loss follows it
                twin_loss = copy.deepcopy(loss)
                twin_loss.forward(np.zeros_like(out), y[:2])
                twin_loss.backward(1.0)
            _warm_optimizer(optimizer, twin)
            _warm_batches(twin, loss, x, y, batch_size)
            ok = True
        except Exception:  # noqa: BLE001 - the real first step meets it and says why
            ok = False
        ok = all([_finish(w) for w in workers]) and ok  # wait for every worker
    finally:
        for w in workers:  # still running only where something above failed
            if w.poll() is None:
                w.kill()
                w.wait()
    if ok and marker is not None:
        with suppress(OSError):  # a read-only cache: the next cold start just precompiles again
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"model": model.spec()}))
    return {"processes": 1 + len(workers), "ok": ok,
            "seconds": time.perf_counter() - start}


def warm_layers(model, layers, shapes):
    """Run ``model.steps[i]`` (the layers as the model runs them, fused where they
    fuse) for i in ``layers`` forward and backward once on zeros of its input shape
    (batch 2); returns the last step's output when the list ends with the model's
    last step (for the loss), else None."""
    out = None
    model._set_input_grads()
    model.zero_grad()  # as before a training step
    for i in layers:
        layer = model.steps[i]
        x = np.zeros((2, *shapes[i]), model.dtype)
        y = layer.forward(x)  # the finiteness check has a kernel of its own too
        layer.backward(np.zeros_like(y))
        out = y if i == len(model.steps) - 1 else None
    return out


def _warm_optimizer(optimizer, twin):
    """One update of a twin optimizer (same class and config) on the twin model."""
    if optimizer is None or not hasattr(optimizer, "config"):
        return
    with suppress(TypeError, ValueError):  # built some other way: its first real step compiles it
        type(optimizer)(twin, **optimizer.config()).step()


def _warm_batches(model, loss, x, y, batch_size):
    """One shuffled mini-batch gather from ``x`` and ``y``, as the trainer takes them
    (:class:`nnumba.train.batches.Batches`), at its size: a large one runs a kernel
    a small one does not."""
    from .train.batches import Batches, target_dtype
    n = min(len(x), batch_size)
    if n > 1:
        Batches(model.device, x[:n], y[:n], n, target_dtype(loss, model.dtype, y)).take(
            np.arange(n)[::-1].copy())


def _input_shapes(model, input_shape):
    """Per-sample input shape of every step, and the model's output shape last."""
    return [tuple(input_shape)] + [s[1:] for s in model._step_shapes((2, *input_shape))]


def _units(model, shapes) -> dict:
    """{kernel key: (seconds, [step indices])}: steps that share kernels together."""
    units = {}
    model._set_input_grads()  # some keys depend on it
    for i, layer in enumerate(model.steps):
        key, seconds = compile_unit_of(layer, shapes[i])
        old_seconds, members = units.get(key, (0.0, []))
        units[key] = (max(old_seconds, seconds), members + [i])
    return units


def _plan(units, processes) -> list[list[int]]:
    """Layer indices per process (this one first): the costliest unit goes to the
    least loaded process; workers start WORKER_START behind, and this one has
    MAIN_EXTRA to do.  The loss runs here, so the last layer always stays here."""
    last = max(i for _, members in units.values() for i in members)
    loads = [MAIN_EXTRA] + [WORKER_START] * (processes - 1)
    plan = [[] for _ in range(processes)]
    for seconds, members in sorted(units.values(), key=lambda u: -u[0]):
        p = 0 if last in members else loads.index(min(loads))
        loads[p] += seconds
        plan[p] += members
    return [sorted(layers) for layers in plan]


def _marker(model, loss, x, y, batch_size) -> Path | None:
    """A file beside numba's cache, named after everything the compiled code
    depends on: the kernels' and layers' sources, the model, the dtypes, whether
    the batch gather runs its kernel (batch_size), numba and the CPU.  None where
    the cache location is unknown."""
    from .kernels.cpu import arrays, optim
    try:
        cache_dir = Path(optim._sgd_step.stats.cache_path)
    except (AttributeError, TypeError):
        return None
    import numba
    from llvmlite import binding
    kernels = Path(optim.__file__).parent
    sources = sorted(kernels.glob("*.py")) + sorted(kernels.parent.glob("*.py")) + sorted(
        {Path(sys.modules[type(obj).__module__].__file__)
         for obj in [*model.layers, loss] if getattr(sys.modules.get(type(obj).__module__),
                                                      "__file__", None)})
    stamps = [(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in sources]
    key = json.dumps([model.spec(), model.dtype.name, list(x.shape[1:]), y.dtype.name,
                      type(loss).__name__, numba.__version__, platform.machine(),
                      min(len(x), batch_size) * int(np.prod(x.shape[1:])) >= arrays._PARALLEL_FROM,
                      binding.get_host_cpu_name(), stamps], default=str)
    return cache_dir / f"nnumba-precompiled-{hashlib.sha1(key.encode()).hexdigest()[:16]}"


def _recipe(model) -> dict | str:
    """What a worker, a fresh process, needs to rebuild ``model``, or why it can't:
    ``{"spec"}``, plus ``"classes"`` ({name: "module:qualname"}) and ``"path"``
    (sys.path) for layers a plugin registered at run time here, which a fresh
    registry lacks: the worker imports those classes and registers them itself."""
    registry = get_registry()
    spec, classes = model.spec(), {}
    for item, layer in zip(spec, model.layers):
        entry = None
        with suppress(RegistryError):
            entry = registry.entry("layer", item["type"])
        if entry is None or entry.obj is not type(layer):
            return (f"layer {type(layer).__name__} is not in the registry (workers build "
                    f"the model from its spec)")
        if entry.distribution == RUNTIME_DISTRIBUTION:
            path = _import_path(entry.obj)
            if path is None:
                return (f"layer {item['type']!r} was registered at run time from a class "
                        f"workers cannot import ({entry.obj.__module__}."
                        f"{entry.obj.__qualname__}); define it in a module to precompile it")
            classes[item["type"]] = path
    return {"spec": spec, "classes": classes, "path": list(sys.path) if classes else []}


def _import_path(cls) -> str | None:
    """"module:qualname" that imports ``cls`` elsewhere; None for a class of
    __main__ (a script, a notebook) or one defined inside a function."""
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        return None
    obj = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return f"{module}:{qualname}" if obj is cls else None


def _import_class(path: str):
    module, qualname = path.split(":")
    return functools.reduce(getattr, qualname.split("."), importlib.import_module(module))


# ---- workers ---------------------------------------------------------------------------

def _worker_command() -> list[str]:
    return [sys.executable, "-m", "nnumba.precompile"]


#: workers prestart() started, waiting for a job on stdin
_waiting: list[subprocess.Popen] = []
atexit.register(dismiss)  # a run that ends before precompile (bad data) leaves none behind


def _spawn() -> subprocess.Popen:
    return subprocess.Popen(_worker_command(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _start_worker(job) -> subprocess.Popen:
    proc = _waiting.pop() if _waiting else _spawn()
    with suppress(OSError):  # it died at once: _finish reports why
        proc.stdin.write(json.dumps(job))
        proc.stdin.close()
    proc.stdin = None  # sent: communicate() only collects stderr
    return proc


def _finish(proc, timeout: float = 600) -> bool:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    if proc.returncode != 0:  # its last line says why; a traceback would alarm for nothing
        why = (err.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        print(f"nnumba.precompile: a worker failed, the first step compiles what it missed: "
              f"{why[-500:]}", file=sys.stderr)
    return proc.returncode == 0


def _worker_main():
    from .hookspecs import hookimpl
    from .model import Sequential
    job = sys.stdin.read()  # started ahead (prestart), this waits here with numba imported
    if not job:
        return  # dismissed: no job came
    job = json.loads(job)
    sys.path.extend(p for p in job["path"] if p not in sys.path)
    if job["classes"]:  # the layers registered at run time in the parent process
        layers = {name: _import_class(path) for name, path in job["classes"].items()}
        register_plugin(types.SimpleNamespace(nnumba_register_layers=hookimpl(lambda: layers)),
                        name="nnumba.precompile run-time layers")
    model = Sequential.from_spec(job["spec"]).astype(np.dtype(job["dtype"]))
    model.input_grad = job["input_grad"]
    model.train()
    warm_layers(model, job["layers"], _input_shapes(model, job["input_shape"]))


if __name__ == "__main__":
    _worker_main()
