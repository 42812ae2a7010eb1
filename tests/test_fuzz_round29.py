"""Fuzz round 29: the experiments' own options (an impossible margin hung, a 0 ran the
default, a noise of 150 % ran, a huge count was numpy's bare MemoryError) and a data
folder whose training labels hold one class (trained to 10 %, status 0)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nnumba.data.arrays import load_arrays
from nnumba.data.check import load_dataset
from nnumba.data.idx import write_idx
from nnumba.errors import NnumbaError
from nnumba.experiments import run_experiment


def _run_with_timeout(code: str, timeout: float = 60):
    """(returncode, stderr) of ``code`` in a fresh interpreter; None where it hangs."""
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    try:
        p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "hung"
    return p.returncode, p.stderr


# ---- 1. perceptron-bound: a margin no sample of the unit ball can have hangs forever --------

@pytest.mark.parametrize("gamma", [2.5, float("nan")])
def test_bound_impossible_margin_is_refused_not_a_hang(gamma):
    # Closed form: the samples lie in the unit ball and w* is a unit vector, so
    # |x . w*| <= ||x|| <= 1: the slab |x . w*| >= gamma / 2 is empty for gamma > 2, and
    # no comparison with NaN is true. separable_data's rejection loop can never fill up.
    rc, err = _run_with_timeout(f"""
        from nnumba.experiments import run_experiment
        try:
            run_experiment("perceptron-bound", fast=True, margins=({gamma!r},))
        except ValueError as exc:
            print("refused:", exc)
            raise SystemExit(3)
        """.replace("nan", "float('nan')"), timeout=60)
    assert rc is not None, f"margins=({gamma},) ran for 60 s without an answer (a hang)"
    assert rc == 3, f"expected a ValueError naming the margin, got rc={rc}: {err[-400:]}"


# ---- 2. an option of 0 (or an empty list) silently runs the default ---------------------------

@pytest.mark.parametrize("option,key", [("copies", "K"), ("originals", "M"), ("steps", "steps")])
def test_replicated_set_zero_option_is_not_replaced_by_the_default(option, key):
    # Asked for 0, the run must either refuse it (ValueError) or run with 0; at HEAD
    # `originals or 50` etc. runs with the default and reports it as the result.
    try:
        result = run_experiment("replicated-set", fast=True, **{option: 0})
    except ValueError:
        return
    assert result.numbers[key] == 0, (
        f"{option}=0 was silently replaced: the result reports {key} = {result.numbers[key]}")


def test_tanh_vs_relu_zero_epochs_is_not_replaced_by_the_default():
    # hog epochs=0 trains 0 epochs; tanh-vs-relu epochs=0 trains its default 60 (fast).
    try:
        result = run_experiment("tanh-vs-relu", fast=True, epochs=0)
    except ValueError:
        return
    assert result.numbers["epochs"] == 0, (
        f"epochs=0 was silently replaced: the result reports epochs = {result.numbers['epochs']}")


# ---- 3. an MNIST folder whose training labels hold one class trains (npz / csv refuse it) ----

def test_one_class_idx_folder_is_refused_like_an_npz(tmp_path):
    rng = np.random.default_rng(0)
    img = (rng.random((20, 28, 28)) * 255).astype(np.uint8)
    one = np.zeros(20, np.uint8)
    all10 = (np.arange(20) % 10).astype(np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", img)
    write_idx(tmp_path / "train-labels-idx1-ubyte", one)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", img)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", all10)
    # Reference: the same arrays as an .npz are refused ("a classifier needs two classes").
    np.savez(tmp_path / "same.npz", x_train=img.reshape(20, 1, 28, 28), y_train=one)
    with pytest.raises(ValueError, match="one class"):
        load_arrays(tmp_path / "same.npz")
    with pytest.raises(ValueError, match="one class|two classes"):
        load_dataset("mnist", root=tmp_path)


# ---- 4. knn-radius: a label-noise fraction outside [0, 1] runs and reports it --------------

@pytest.mark.parametrize("noise", [1.5, -0.1, float("nan")])
def test_knn_noise_outside_a_probability_is_refused(noise):
    # A flipped fraction is a probability: 150 % or nan % of labels cannot be flipped.
    # At HEAD the table reads "150%" (all flipped) or "nan%" (none flipped).
    with pytest.raises(ValueError):
        run_experiment("knn-radius", fast=True, noises=(noise,), ks=(1,))


# ---- 5. replicated-set: a copy count too large is numpy's raw MemoryError --------------------

def test_replicated_set_huge_copies_is_an_nnumba_error():
    # 10**9 copies of 50 images of 784 float64 values is 3e14 bytes (closed form), beyond
    # any machine: other experiments answer this with nnumba's TooLargeError / SpecError.
    need = 10**9 * 50 * 784 * 8
    assert need > 2**40
    with pytest.raises(NnumbaError):
        run_experiment("replicated-set", fast=True, copies=10**9)


def test_bound_empty_margins_is_named_not_a_division_by_zero():
    with pytest.raises(ValueError, match="at least one margin"):
        run_experiment("perceptron-bound", fast=True, margins=())
