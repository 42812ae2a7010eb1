"""The benchmark suite's --bench-plot: every job's ratio drawn beside its target."""
import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "bench_plot", Path(__file__).resolve().parents[1] / "benchmarks" / "plot.py")
plot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot)


def test_targets_are_the_issues():
    assert plot.target("alexnet-infer-b16") == 0.8 and plot.target("cnn-epoch") == 0.5
    assert plot.target("torch-mlp-epoch after nnumba import / alone") == 1.05
    assert plot.target("layers-lenet-b100") is None


def test_bars_say_met_missed_or_no_target():
    assert plot.color(0.72, 0.5) == "tab:red" and plot.color(0.48, 0.5) == "tab:green"
    assert plot.color(0.5, 0.5) == "tab:green"
    assert plot.color(1.23, None) == "tab:grey"  # a per-layer profile: no target to meet


def test_the_ratios_are_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [{"group": "cnn-epoch", "ratio": 0.48, "peer": "torch"},
            {"group": "alexnet-infer-b16", "ratio": 1.2, "peer": "torch"},
            {"group": "numpy-sgemm-large after nnumba import / alone", "ratio": 0.9,
             "peer": "numpy alone"}]
    out = tmp_path / "ratios.png"
    assert plot.plot_ratios(rows, out, "a machine") is None
    from matplotlib.image import imread
    image = imread(out)
    assert image.shape[1] == 990 and image.shape[0] > 200  # 9 inches at 110 dpi
