"""scikit-learn estimators on nnumba: ``pip install "nnumba[sklearn]"``.

- :class:`NNClassifier` and :class:`NNRegressor` train a model (a registered
  name such as ``"mlp"``, a spec, or a list of layers) with nnumba's SGD or GD
  trainer: cross-entropy over the classes, or squared error on the targets.
- :class:`PerceptronClassifier` is the lecture's perceptron (one per class
  against the rest when there are more than two).

They follow scikit-learn's conventions, so ``Pipeline``, ``GridSearchCV`` and
``cross_val_score`` take them as they are. Inputs are validated by
scikit-learn's own utilities and arrive as rows of features; a named model is
built for them: its ``inputs`` and ``classes`` options follow the data, and
rows are reshaped to its own input shape where it needs one (``"lenet"`` on
784-pixel rows).

Worker processes: joblib's default ``loky`` workers are fresh interpreters, so
``GridSearchCV(..., n_jobs=2)`` just works; its ``"multiprocessing"`` backend (fork
without exec) does not with numba's ``omp`` layer (a forked child running a parallel
kernel is terminated, and the pool waits). Threads work under tbb and omp, not under
``workqueue``, which aborts on concurrent parallel kernels.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
from scipy.special import log_softmax, softmax

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import (  # 1.6 and later
        check_is_fitted, column_or_1d, validate_data)
except ImportError as exc:
    raise ImportError('nnumba.sklearn needs scikit-learn 1.6 or later: '
                      'pip install "nnumba[sklearn]"') from exc

from .errors import LabelError, NonFiniteError
from .layers import Layer
from .layers.parameters import shapes_only
from .layers.fitting import check_not_fitting
from .layers.validation import check_cast, flag, integer, number, show
from .models.fitting import model_for_data, train_defaults
from .registry import get_loss
from .registry_names import layer_spec
from .sklearn_inputs import check_numbers
from .sklearn_labels import checked_classes, sorted_classes
from .sklearn_perceptron import PerceptronClassifier
from .sklearn_restore import as_before_on_error
from .train import TRAINERS

__all__ = ["NNClassifier", "NNRegressor", "PerceptronClassifier"]

DTYPES = ("float32", "float64")


class _NNEstimator(BaseEstimator):
    """What the classifier and the regressor share: the model, the trainer, the loop."""

    _loss = ""  # the registered loss a subclass trains with

    def __init__(self, model="mlp", *, model_options=None, input_shape=None, trainer="sgd",
                 epochs=None, lr=None, momentum=None, weight_decay=0.0, batch_size=None,
                 shuffle=True, drop_last=False, dtype="float32", random_state=None, warm_start=False):
        self.model = model
        self.model_options = model_options
        self.input_shape = input_shape
        self.trainer = trainer
        self.epochs = epochs
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.dtype = dtype
        self.random_state = random_state
        self.warm_start = warm_start

    # ---- subclasses: targets in, outputs out ------------------------------------------
    def _targets(self, y, first: bool, classes=None):
        """(what the loss takes, the model's output width) for validated ``y``."""
        raise NotImplementedError

    # ---- training -------------------------------------------------------------------
    def fit(self, X, y):
        """Train for ``epochs`` from a fresh model, or from the last one with
        ``warm_start``; the optimizer (its momentum) and the order of the samples start
        afresh either way, as MLPClassifier's do (partial_fit goes on with both)."""
        first = not (self.warm_start and hasattr(self, "model_"))  # a flag: _fit checks it
        return self._fit(X, y, first, None, fresh_trainer=True)

    def _fit(self, X, y, first, epochs, fresh_trainer, classes=None):
        """``epochs`` (None: the setting) on validated (X, y); every setting is checked
        first, before the data."""
        with as_before_on_error(self):
            settings = self._settings()
            check_numbers(type(self).__name__, X)
            X, y = validate_data(self, X, y, dtype=self._dtype(), reset=first,
                                 **self._y_validation)
            targets, outputs = self._targets(y, first, classes)
            interrupted = self._train(X, targets, outputs, first,
                                      epochs or settings["epochs"], fresh_trainer, settings)
        if interrupted:  # said once the estimator holds them (an error filter: kept too)
            warnings.warn(f"{type(self).__name__}: training interrupted by user, after "
                          f"{interrupted[0]} of {interrupted[1]} epochs (the weights of "
                          f"the last update)", UserWarning, stacklevel=3)
        return self

    def _partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the model and the optimizer (a new
        optimizer where set_params changed the trainer's settings since)."""
        first = not hasattr(self, "model_")
        return self._fit(X, y, first, 1, fresh_trainer=first, classes=classes)

    input_shape, shuffle, drop_last = None, True, False  # (pickled before they existed)
    _trainer = None  # kept for partial_fit; a copy keeps its state (__getstate__)
    _trainer_settings = None  # what _trainer was built with

    def _dtype(self):
        try:  # "float32", np.float32 or np.dtype("float32"); not None (numpy's float64)
            dtype = None if self.dtype is None else np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype is None or dtype.name not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {show(self.dtype)}")
        if not dtype.isnative:  # '>f4' is named float32 too; the kernels read native
            raise ValueError(f"dtype must be one of {DTYPES} in native byte order, got "
                             f"{show(self.dtype)}")
        return dtype

    def _check_params(self):
        """ValueError (nnumba's SpecError for a number) for a setting the model or
        the trainer cannot take, before anything is built; the trainers check lr,
        momentum, weight_decay and batch_size themselves."""
        self._dtype()
        for name in ("warm_start", "shuffle", "drop_last"):  # "no" would be truthy
            flag(type(self).__name__, name, getattr(self, name))
        # None would be the trainer's "not given": documented as a number here
        number(type(self).__name__, "weight_decay", self.weight_decay, 0.0)
        if not isinstance(self.trainer, str) or self.trainer not in TRAINERS:
            raise ValueError(f"trainer must be one of {sorted(TRAINERS)}, got "
                             f"{show(self.trainer)}")
        options = self.model_options
        if options is not None and (not isinstance(options, Mapping) or
                                    not all(isinstance(k, str) for k in options)):
            raise ValueError(f"model_options must be a dict of the named model's options "
                             f"by name, e.g. {{'hidden': [128, 64]}}, got {show(options)}")
        shape = self.input_shape
        if shape is not None and not (
                isinstance(shape, (tuple, list)) and 1 <= len(shape) <= 4 and all(
                    isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0
                    for d in shape)):
            raise ValueError(f"input_shape must be None or the per-sample shape the rows are "
                             f"reshaped to, 1 to 4 positive ints such as (1, 8, 8), or "
                             f"(1, 4, 8, 8) for clips of 4 frames (Conv3d), got "
                             f"{show(shape)}")
        seed = self.random_state  # else numpy's "Seed must be between ..." names nothing
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and \
                not 0 <= int(seed) < 2**32:
            raise ValueError(f"random_state must be None, a RandomState or an int in "
                             f"[0, 2**32 - 1], got {show(seed)}")

    def _sample_shape(self, X) -> tuple:
        """The shape each row of X is given to the model in: ``input_shape``, else the
        row itself (which a named model may reshape to its own)."""
        if self.input_shape is None:
            return (X.shape[1],)
        shape = tuple(int(d) for d in self.input_shape)
        if math.prod(shape) != X.shape[1]:  # (np.prod wraps past 2**63)
            raise ValueError(f"input_shape {shape} holds {math.prod(shape)} values a "
                             f"sample; X has {X.shape[1]} features")
        return shape

    _y_validation = {}  # validate_data's options for y
    _default_lr = None  # where lr=None does not take the named model's

    def _settings(self) -> dict:
        """epochs, lr, momentum, batch_size: as given, else the named model's
        train_defaults, else nnumba's fallback (as ``nnumba train``). Every setting
        is checked here, where fit and partial_fit start."""
        self._check_params()
        defaults, _ = train_defaults(self.model)
        given = {"epochs": self.epochs, "lr": self.lr, "momentum": self.momentum,
                 "batch_size": self.batch_size}
        settings = {k: defaults[k] if v is None else v for k, v in given.items()}
        if self.lr is None and self._default_lr is not None:
            settings["lr"] = self._default_lr
        # int() would train 1.5 as 1, "2" as 2 and True as 1 epoch
        settings["epochs"] = integer(type(self).__name__, "epochs", settings["epochs"], 1,
                                     None)
        return settings

    def _train(self, X, targets, outputs, first, epochs, fresh_trainer, settings):
        """Train; returns (epochs done, epochs asked) where Ctrl-C stopped it, else None."""
        rng = check_random_state(self.random_state)
        if first:
            self.model_, self.input_shape_ = model_for_data(
                self.model, self._sample_shape(X), outputs, options=self.model_options,
                seed=int(rng.randint(2**31 - 1)))
            self.history_, self.n_iter_ = [], 0
        elif self._network(X, outputs) != repr(self.model_.spec()):
            raise ValueError(f"{type(self).__name__}: model or model_options changed since "
                             f"model_ was built; warm_start and partial_fit continue model_: "
                             f"fit with warm_start=False to build the new model")
        if first or self.model_.dtype != self._dtype():  # set_params(dtype=...) since
            self.model_.astype(self._dtype())
        # set_params between partial_fit calls: else the old lr, batch_size, ... stayed
        used = (self.trainer, settings["lr"], settings["momentum"], self.weight_decay,
                settings["batch_size"], self._dtype())
        order = {"shuffle": bool(self.shuffle), "drop_last": bool(self.drop_last)} \
            if self.trainer == "sgd" else {}  # gd: every sample, in one step
        if fresh_trainer or used != self._trainer_settings or self._trainer is None:
            kept = self.__dict__.pop("_trainer_state", None)  # a copy's: go on from it
            same, self._trainer_settings = used == self._trainer_settings, used
            self._trainer = TRAINERS[self.trainer](
                self.model_, get_loss(self._loss)(), lr=settings["lr"],
                momentum=settings["momentum"], weight_decay=self.weight_decay,
                batch_size=settings["batch_size"], seed=int(rng.randint(2**31 - 1)), **order)
            if kept is not None and same and not fresh_trainer:  # as the original would
                self._trainer.resume({**kept[0], "velocity": kept[1], **order})
        if order:  # set_params(shuffle=) between partial_fit calls: the momentum goes on
            self._trainer.shuffle, self._trainer.drop_last = order["shuffle"], order["drop_last"]
        before, interrupted = len(self._trainer.history.epochs), None
        try:
            self._trainer.fit(self._rows(X), targets, epochs=epochs)
        except KeyboardInterrupt:  # as scikit-learn's MLP: the epochs done are kept
            interrupted = (len(self._trainer.history.epochs) - before, epochs)
        # numbered by the estimator: a trainer built since (set_params) counts from 1
        done = self._trainer.history.epochs[before:]
        self.history_ += [{**row, "epoch": self.n_iter_ + i + 1} for i, row in enumerate(done)]
        self.n_iter_ += len(done)
        return interrupted

    def _network(self, X, outputs) -> str:
        """The spec that model and model_options build now (repr: no == for arrays),
        to compare with model_'s: options spelt another way ({"hidden": (5,)} for
        [5]) build the same network. Shapes only: no weights drawn or allocated; built
        once for the same settings (partial_fit's small chunks paid it 3x over)."""
        model = self.model
        key = repr((model, self.model_options, self._sample_shape(X), outputs))
        seen = self.__dict__.get("_network_seen")
        if seen is not None and seen[0] == key:
            return seen[1]
        if isinstance(model, (list, tuple)) and model and \
                all(isinstance(m, Layer) for m in model):  # not a copy of their weights
            spec = repr([layer_spec(layer) for layer in model])
        else:
            with shapes_only():
                net, _ = model_for_data(model, self._sample_shape(X), outputs,
                                        options=self.model_options, seed=None)
            spec = repr(net.spec())
        self._network_seen = (key, spec)
        return spec

    def _rows(self, X):
        return X.reshape((len(X),) + tuple(self.input_shape_))

    def _outputs(self, X) -> np.ndarray:
        """The model's outputs in its own dtype (``dtype``): a float64 copy of float32
        values would claim a precision they were not computed with."""
        check_is_fitted(self, "model_")
        # the fitted model's dtype: set_params(dtype=...) applies to the next fit
        check_numbers(type(self).__name__, X)
        X = validate_data(self, X, dtype=self.model_.dtype, reset=False)
        check_not_fitting(self.model_, f"{type(self).__name__}'s model",  # an estimator's words
                          "predict once fit() or partial_fit() returns, or on a copy of the "
                          "estimator made before (copy.deepcopy)")
        out = self.model_.predict(self._rows(X))
        if not np.isfinite(out).all():  # X is finite: the fitted weights overflow it
            top = float(np.abs(self.model_.flat_params).max())
            raise NonFiniteError(
                f"{type(self).__name__}: the model's outputs overflow {out.dtype.name} for "
                f"these inputs (its largest weight is {top:.3g}): the fit diverged; fit "
                f"again with a lower lr or with the inputs scaled (StandardScaler)")
        return out

    # ---- pickling (the model rebinds its parameters itself: Sequential.__setstate__) ----
    def __getstate__(self):
        state = dict(super().__getstate__())  # (Python 3.11: the instance's own __dict__)
        trainer = state.pop("_trainer", None)  # callbacks and buffers: a copy makes its own
        if trainer is not None:  # and goes on with this one's momentum and batch order
            state["_trainer_state"] = trainer.state()
        return state


class NNClassifier(ClassifierMixin, _NNEstimator):
    """A neural-network classifier: softmax cross-entropy over ``classes_``.
    Standardise the inputs (``StandardScaler`` in a ``Pipeline``), as for any
    network trained by SGD.

    Parameters
    ----------
    model : str, list of dict, or list of nnumba.Layer, default="mlp"
        A registered model name (``nnumba plugins`` lists them), a spec
        (``[{"type": "Linear", ...}, ...]``) or layer objects (copied at fit,
        and the copies drawn afresh from ``random_state``: trained weights in
        them are not kept).
        A named model's ``inputs`` and ``classes`` options follow the data;
        a spec or layers must fit it (an error says where they do not).
    model_options : dict, default=None
        Options of a named model's factory, e.g. ``{"hidden": [128, 64]}``.
    input_shape : tuple of int, default=None
        The per-sample shape each row of X is reshaped to, e.g. ``(1, 8, 8)`` for
        a convolutional spec on scikit-learn's 64-pixel digits, ``(C, T, H, W)`` for
        clips of T frames (a Conv3d spec). None: rows as
        they are, or a named model's own input shape (``"lenet"``: 784 pixels).
    trainer : {"sgd", "gd"}, default="sgd"
        Mini-batch SGD or exact gradient descent.
    epochs, lr, momentum, batch_size : default=None
        None: the named model's ``train_defaults`` (``mlp``: 20 epochs, lr 0.1,
        momentum 0.9, batch 100), else nnumba's fallback (10, 0.05, 0.9, 100).
    weight_decay : float, default=0.0
        L2 decay of every parameter, biases included, added to each step's
        gradient as PyTorch's SGD does (``weight_decay * w``). MLPClassifier's
        ``alpha`` decays the weight matrices only, by ``alpha / batch size``:
        without biases, ``weight_decay = alpha / batch_size`` matches it where
        the batch size divides the sample count.
    shuffle : bool, default=True
        SGD visits the samples in a new random order every epoch; False: in
        the order given (as MLPClassifier's ``shuffle``).
    drop_last : bool, default=False
        SGD leaves out the last batch of an epoch where it is short (as
        PyTorch's DataLoader): for a layer that needs several samples a batch
        (a batch norm), whatever the number of samples a fold holds.
    dtype : {"float32", "float64"} (or the numpy dtype), default="float32"
        The model's and the inputs' precision, and the dtype of what
        ``predict_proba`` and ``predict_log_proba`` return (float32 by default:
        the precision the model computes in, not a float64 copy of it).
    random_state : int, RandomState or None, default=None
        Seeds the initial weights and the order of the samples.
    warm_start : bool, default=False
        ``fit`` continues from the last model instead of a fresh one (the
        classifier: on the same classes, as MLPClassifier).

    Attributes: ``classes_``, ``n_features_in_``, ``model_`` (the trained
    ``nnumba.Sequential``), ``input_shape_`` (per-sample shape fed to it),
    ``history_`` (one dict per epoch), ``n_iter_`` (epochs trained).
    """

    _loss = "CrossEntropy"

    def fit(self, X, y):
        """Train for ``epochs`` from a fresh model, or with ``warm_start`` from the last
        one, on the same classes (as scikit-learn's MLPClassifier): its outputs are
        those classes'."""
        if self.warm_start and hasattr(self, "model_"):
            y = column_or_1d(y, warn=True)  # scikit-learn's own errors for bad labels
            given = sorted_classes(y)
            if not np.array_equal(given, self.classes_):
                raise ValueError(f"warm_start can only be used where y has the same classes "
                                 f"as in the previous call to fit, "
                                 f"{show(self.classes_.tolist())}; got "
                                 f"{show(given.tolist())}: fit with warm_start=False")
        return super().fit(X, y)

    def _targets(self, y, first, classes=None):
        labels = sorted_classes(y)
        if first:
            self.classes_ = labels if classes is None else np.unique(classes)
        unknown = np.setdiff1d(labels, self.classes_)
        if len(unknown):
            raise ValueError(f"y holds labels {unknown[:5].tolist()} that are not in "
                             f"classes_ {self.classes_[:10].tolist()}")
        return np.searchsorted(self.classes_, y), len(self.classes_)

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the model and the optimizer;
        ``classes`` (every label there will be) is required on the first call."""
        if classes is None and not hasattr(self, "model_"):
            raise ValueError("classes must be passed on the first call to partial_fit")
        if classes is not None:
            classes = checked_classes(classes)
        if classes is not None and hasattr(self, "model_") and \
                not np.array_equal(classes, self.classes_):  # else ignored
            raise LabelError(f"partial_fit: classes={show(classes.tolist())} is not "
                             f"the same as on the first call, "
                             f"{show(self.classes_.tolist())}: fit() starts afresh")
        return self._partial_fit(X, y, classes)

    def predict_proba(self, X):
        """Softmax of the model's outputs: one column per class of ``classes_``, in
        the estimator's ``dtype`` (float32 by default)."""
        return softmax(self._outputs(X), axis=1)

    def predict_log_proba(self, X):
        """Log-softmax of the model's outputs, in the estimator's ``dtype``."""
        return log_softmax(self._outputs(X), axis=1)

    def predict(self, X):
        """The class of ``classes_`` (its dtype) with the largest output."""
        best = self._outputs(X).argmax(axis=1)  # first: it checks that the model is fitted
        return self.classes_[best]


class NNRegressor(RegressorMixin, _NNEstimator):
    """A neural-network regressor: squared error on one or several targets.

    The loss is PyTorch's ``MSELoss``, the mean over samples and targets of
    (prediction - target)**2: twice the loss ``MLPRegressor`` reports (half
    that mean). Its gradient sums over the targets, though, so its steps match
    ours at ``learning_rate_init = 2 * lr / n_outputs_``.

    The parameters and attributes are NNClassifier's (``classes_`` aside), but
    ``lr=None`` is 0.002, not the named model's step; a named model's ``classes``
    option is the number of targets, ``n_outputs_``. Targets
    are not rescaled: wrap in ``TransformedTargetRegressor`` where they are large.
    ``predict`` returns the model's ``dtype`` (float32 by default), the precision
    it computes in.
    """

    _loss = "MSE"
    # The named models' steps are set for classification; the squared error's gradient
    # grows with the targets: at mlp's 0.1, and at 0.01, scikit-learn's checks diverged.
    _default_lr = 0.002

    _y_validation = {"y_numeric": True, "multi_output": True}

    def partial_fit(self, X, y):
        """One epoch over (X, y), continuing from the model and the optimizer."""
        return self._partial_fit(X, y)

    def _targets(self, y, first, classes=None):
        y = y.reshape(len(y), -1)
        if y.dtype.kind not in "biuf":  # strings: astype's bare "could not convert" below
            raise LabelError(f"NNRegressor: y must hold numbers, got dtype {y.dtype} "
                             f"(class names? use NNClassifier)")
        check_cast("NNRegressor", "y", y, self._dtype(), "rescale the targets")  # inf after it
        if first:
            self.n_outputs_ = y.shape[1]
        elif y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y.shape[1]} targets, the model was fitted with "
                             f"{self.n_outputs_}")
        return y.astype(self._dtype()), self.n_outputs_

    def predict(self, X):
        """The model's outputs in the estimator's ``dtype``: (n,) for one target,
        else (n, n_outputs_)."""
        out = self._outputs(X)
        return out.ravel() if self.n_outputs_ == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
