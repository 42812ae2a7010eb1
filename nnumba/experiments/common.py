"""What every experiment imports: the registering decorator, the Result and its table
formatting, the figure plumbing; and helpers several experiments share: plugin features,
separability, margins, k-NN."""
import numpy as np

from ..errors import RegistryError
from ..registry import AUTOLOAD_OFF, get_layer, get_registry
from .figures import (NEGATIVE, POSITIVE, decision_regions, finish, label_scatter, network,
                      with_figure)
from .registry import experiment
from .result import Result, format_table, percent, vector

__all__ = ["NEGATIVE", "PLUGIN_HINT", "POSITIVE", "Result", "decision_regions", "experiment",
           "feature_layer", "features", "finish", "format_table", "geometric_margin",
           "knn_predict", "label_scatter", "linearly_separable", "network", "percent",
           "vector", "with_figure"]

PLUGIN_HINT = ("it comes with the nnumba-features plugin, in nnumba's source tree: "
               "pip install -e plugins/nnumba-features")


def plugin_hint() -> str:
    """PLUGIN_HINT, and where plugins are not loaded, that an installed one gave nothing."""
    return PLUGIN_HINT if get_registry().autoload else f"{PLUGIN_HINT} ({AUTOLOAD_OFF})"


def feature_layer(name: str, dtype=np.float64, **kwargs):
    """A layer of the nnumba-features plugin, found through the registry as any plugin's."""
    try:
        cls = get_layer(name)
    except RegistryError:
        raise RegistryError(f"this experiment needs the feature layer {name!r}: "
                            f"{plugin_hint()}") from None
    return cls(**kwargs).astype(dtype)


def features(layer, x: np.ndarray) -> np.ndarray:
    """Phi(x) for a whole set, as a fresh array in the layer's dtype."""
    return layer.forward(np.ascontiguousarray(x, dtype=layer.dtype)).copy()


def linearly_separable(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether some (w, b) has y_n (w . x_n + b) >= 1 for all n: a linear program,
    independent of any trainer (scipy's HiGHS decides feasibility exactly)."""
    from scipy.optimize import linprog
    x = x.reshape(len(x), -1).astype(np.float64)
    a = -y[:, None] * np.column_stack([x, np.ones(len(x))])
    res = linprog(np.zeros(a.shape[1]), A_ub=a, b_ub=-np.ones(len(x)),
                  bounds=[(None, None)] * a.shape[1], method="highs")
    if res.status not in (0, 2):  # 0 feasible, 2 infeasible; anything else is a failure
        raise RuntimeError(f"separability LP failed: {res.message}")
    return res.status == 0


def geometric_margin(w: np.ndarray, b: float, x: np.ndarray, y: np.ndarray) -> float:
    """min_n y_n (w . x_n + b) / ||w||: the distance of the closest sample to the
    boundary (negative when a sample is on the wrong side)."""
    return float(np.min(y * (x @ w + b)) / np.linalg.norm(w))


def knn_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, k: int) -> np.ndarray:
    """Majority vote of the k nearest training samples (Euclidean); labels in {-1, +1},
    k odd so that there is no tie."""
    if k % 2 == 0 or not 1 <= k <= len(x_train):
        raise ValueError(f"k must be odd and in [1, {len(x_train)}], got {k}")
    x_train = x_train.reshape(len(x_train), -1)
    x_test = x_test.reshape(len(x_test), -1)
    # ||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2, without an (N, M, D) array.
    d2 = (np.einsum("nd,nd->n", x_test, x_test)[:, None] - 2 * x_test @ x_train.T
          + np.einsum("md,md->m", x_train, x_train)[None, :])
    nearest = np.argpartition(d2, k - 1, axis=1)[:, :k]
    return np.where(y_train[nearest].sum(axis=1) > 0, 1, -1)
