"""nnumba.precompile: the cold-cache compile spread over processes."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnumba
from nnumba import precompile as pc
from nnumba.layers import Layer
from nnumba.losses import CrossEntropy


def test_units_group_layers_that_share_kernels():
    # steps: conv+relu+pool, conv, relu+pool, flatten, linear+relu, linear
    model = nnumba.build("lenet")
    units = pc._units(model, pc._input_shapes(model, (1, 28, 28)))
    by_step = {i: key for key, (_, members) in units.items() for i in members}
    assert by_step[0] == by_step[2]            # conv1's one-pass kernels call the max-pool's
    assert by_step[1] != by_step[0]            # conv2 runs im2col
    assert by_step[4] != by_step[5]            # the fused Linear + ReLU has kernels of its own
    assert units[by_step[4]][0] > 0 and units[by_step[3]][0] == 0  # Flatten compiles nothing


def test_plan_balances_units_and_keeps_the_last_layer_here():
    units = {"a": (9.0, [0]), "b": (5.0, [2, 5]), "c": (6.0, [3]), "d": (1.0, [7, 9]),
             "e": (0.5, [1, 4, 8])}
    plan = pc._plan(units, 2)
    assert sorted(sum(plan, [])) == [0, 1, 2, 3, 4, 5, 7, 8, 9]
    assert 9 in plan[0]                         # the loss runs where the last layer does
    assert {2, 5} <= set(plan[0]) or {2, 5} <= set(plan[1])   # a unit is never split
    loads = [sum(s for s, m in units.values() if m[0] in p) for p in plan]
    loads[1] += pc.WORKER_START
    assert max(loads) <= 12.0                   # 22.5 s of work over two processes


def test_small_models_and_opt_outs_spawn_nothing(monkeypatch):
    x, y = np.zeros((4, 784), np.float32), np.zeros(4, np.int64)
    mlp = nnumba.build("mlp")
    assert "worth" in pc.precompile(mlp, CrossEntropy(), x, y, processes=2)["skipped"]
    monkeypatch.setenv("NNUMBA_PRECOMPILE", "0")
    lenet = nnumba.build("lenet")
    assert pc.precompile(lenet, CrossEntropy(), x.reshape(4, 1, 28, 28), y)["skipped"]


def test_layers_missing_from_the_registry_are_not_sent_to_workers():
    class Local(Layer):  # workers rebuild the model from its spec: this one can't be
        def _forward(self, x):
            return x

    model = nnumba.Sequential(*nnumba.build("lenet").layers[:-1], Local(),
                              nnumba.build("lenet").layers[-1])
    info = pc.precompile(model, CrossEntropy(), np.zeros((2, 1, 28, 28), np.float32),
                         np.zeros(2, np.int64), processes=2)
    assert "registry" in info["skipped"]


_COLD_RUN = textwrap.dedent("""
    import json, sys
    import numpy as np
    import nnumba
    from numba.core import event
    from nnumba import precompile as pc
    from nnumba.losses import CrossEntropy
    from nnumba.optim import SGD
    from nnumba.train import SGDTrainer

    model = nnumba.Sequential.from_spec([
        {"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3},
        {"type": "MaxPool2d", "kernel_size": 2}, {"type": "Flatten"},
        {"type": "Linear", "in_features": 4 * 13 * 13, "out_features": 3}], seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 3, 8)
    before = model.flat_params.copy()
    started = []
    info = pc.precompile(model, CrossEntropy(), x, y, processes=2,
                         optimizer=SGD(model, lr=0.1, momentum=0.9), on_start=started.append)
    untouched = bool(np.array_equal(before, model.flat_params)
                     and not model.flat_grads.any())
    trainer = SGDTrainer(model, CrossEntropy(), batch_size=4, precompile=False)
    with event.install_recorder("numba:compile") as rec:
        trainer.fit(x, y)
    compiled = sorted({e.data["dispatcher"].py_func.__qualname__ for _, e in rec.buffer})
    again = pc.precompile(model, CrossEntropy(), x, y, processes=2)
    print(json.dumps({"info": info, "untouched": untouched, "compiled": compiled,
                      "again": again, "started": started}))
""")


def test_a_cold_cache_is_compiled_by_two_processes_and_the_step_loads_it(tmp_path):
    """From an empty numba cache: precompile uses a worker, leaves the real model
    alone, and the first step then compiles nothing."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _COLD_RUN], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["info"]["processes"] == 2 and result["info"]["ok"]
    assert result["started"] == [2]             # announced before the wait
    assert result["untouched"]
    assert result["compiled"] == [], result["compiled"]
    assert result["again"] == {"skipped": "precompiled before"}


def test_a_failing_worker_costs_time_not_the_run(monkeypatch, tmp_path):
    monkeypatch.setattr(pc, "_marker", lambda *a: tmp_path / "marker")
    monkeypatch.setattr(pc, "_worker_command",
                        lambda: [sys.executable, "-c", "import sys; sys.exit('boom')"])
    model = nnumba.build("lenet", seed=0)
    x = np.zeros((2, 1, 28, 28), np.float32)
    info = pc.precompile(model, CrossEntropy(), x, np.zeros(2, np.int64), processes=2)
    assert info["processes"] == 2 and not info["ok"]
    assert not (tmp_path / "marker").exists()   # not marked: the next run tries again


def test_a_layer_failing_on_zeros_does_not_break_precompile(monkeypatch, tmp_path):
    """Best effort: an error in the warm-up is left for the real step to raise."""
    monkeypatch.setattr(pc, "_marker", lambda *a: tmp_path / "marker")
    monkeypatch.setattr(pc, "_start_worker", lambda job: subprocess.Popen(
        [sys.executable, "-c", "pass"], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE))

    def boom(*args):
        raise FloatingPointError("only on zeros")

    monkeypatch.setattr(pc, "warm_layers", boom)
    info = pc.precompile(nnumba.build("lenet", seed=0), CrossEntropy(),
                         np.zeros((2, 1, 28, 28), np.float32), np.zeros(2, np.int64), processes=2)
    assert not info["ok"] and not (tmp_path / "marker").exists()


def test_checks_run_once_whether_or_not_workers_start(monkeypatch, tmp_path):
    """A trainer's target checks run inside precompile: at once when it skips, after
    the workers got their jobs when it runs; an error there stops the workers."""
    x, y = np.zeros((2, 1, 28, 28), np.float32), np.zeros(2, np.int64)
    calls = []
    info = pc.precompile(nnumba.build("mlp"), CrossEntropy(), x.reshape(2, -1), y,
                         processes=2, checks=lambda: calls.append(1))
    assert "skipped" in info and calls == [1]
    monkeypatch.setattr(pc, "_marker", lambda *a: tmp_path / "marker")
    started = []

    def idle(job):  # a worker that would run until killed
        started.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
        return started[-1]

    monkeypatch.setattr(pc, "_start_worker", idle)

    def bad_targets():
        raise ValueError("label 11 of 10 classes")

    with pytest.raises(ValueError, match="label 11"):
        pc.precompile(nnumba.build("lenet"), CrossEntropy(), x, y, processes=2,
                      checks=bad_targets)
    assert started and all(p.poll() is not None for p in started)  # stopped, not left running
    assert not (tmp_path / "marker").exists()


def test_prestarted_workers_are_taken_or_dismissed(monkeypatch):
    """prestart() starts the workers early; precompile takes them for its jobs and
    dismisses the rest, here all of them, since an MLP is not worth a worker."""
    pc.prestart(processes=3)
    waiting = list(pc._waiting)
    assert len(waiting) == 2 and all(p.poll() is None for p in waiting)
    info = pc.precompile(nnumba.build("mlp"), CrossEntropy(), np.zeros((2, 784), np.float32),
                         np.zeros(2, np.int64), processes=2)
    assert "worth" in info["skipped"]
    assert pc._waiting == [] and all(p.poll() is not None for p in waiting)
    monkeypatch.setenv("NNUMBA_PRECOMPILE", "0")
    pc.prestart(processes=3)
    assert pc._waiting == []                    # opted out: nothing starts


def test_a_worker_without_a_job_exits_quietly():
    """A prestarted worker whose parent closes its stdin (or exits) has no job: it
    exits 0 without compiling anything."""
    done = subprocess.run(pc._worker_command(), input="", capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stderr == ""


def test_the_marker_tells_apart_batches_that_compile_another_gather():
    """A run at batch 3 compiles no gather kernel (np.take); one at batch 100 of
    28 x 28 images does: its marker must differ, or that run skips the precompile
    and compiles the gather in the first step."""
    model, loss = nnumba.build("lenet", seed=0), CrossEntropy()
    x, y = np.zeros((200, 1, 28, 28), np.float32), np.zeros(200, np.int64)
    small, large, larger = (pc._marker(model, loss, x, y, b) for b in (3, 100, 200))
    if small is None:
        pytest.skip("numba's cache location is unknown here")
    assert small != large and large == larger
