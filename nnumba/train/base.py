"""What every gradient trainer shares: validation, epochs, evaluation, progress,
history, and the hooks through which a data-parallel trainer
(:mod:`nnumba.distributed`) runs the same loops on its share of every batch."""
from __future__ import annotations

import functools
import math
import sys
import time

import numpy as np

from ..errors import DTypeError, FitRunningError, NonFiniteError, SaveError, SpecError
from ..layers.fitting import check_not_fitting, hold_for_fit, release_after_fit
from ..layers.validation import flag, integer, non_finite, show, takes
from ..optim import SGD
from .batches import Batches, target_dtype
from .data_checks import check_data, check_with_loss
from .divergence import TrainingDiverged, diverged
from .history import History
from .metrics import evaluate
from .progress import Progress
from .stored import (check_layout, check_velocity, layout, savable_options, stored_epochs,
                     warn_settings)


SETTINGS = """

    Settings, keywords only: ``lr`` (0.01), ``momentum`` (0) and ``weight_decay`` (0)
    build its :class:`nnumba.SGD`, or ``optimizer`` brings its own (not both);
    ``batch_size`` (100); ``seed`` (0; None: fresh entropy) orders SGD's batches;
    ``progress`` (False; True: a progress bar on stderr); ``callbacks``, each called
    as ``callback(trainer, row)`` after every epoch (it may set lr and the like);
    ``precompile`` (True: the kernels compile in parallel before the first step)."""


class Trainer:
    """Base of the gradient trainers. Subclasses implement ``_epoch``; data-parallel ones
    override the hooks ``_local``, ``_penalty``, ``_step`` and ``_total``."""
    __doc__ = (__doc__ or "") + SETTINGS  # (every trainer's help() shows them)

    def __init__(self, model, loss, *, lr: float | None = None, momentum: float | None = None,
                 weight_decay: float | None = None, batch_size: int = 100, seed: int = 0,
                 optimizer=None, progress: bool = False, callbacks=(),
                 precompile: bool = True):
        from ..model import Sequential
        owner = type(self).__name__
        if not isinstance(model, Sequential):
            raise DTypeError(f"{owner}: model must be an nnumba Sequential (nnumba.build, "
                             f"nnumba.Sequential(...)), got {type(model).__name__}")
        if optimizer is not None and not callable(getattr(optimizer, "step", None)):
            raise DTypeError(f"{owner}: optimizer must have a step() method, such as "
                             f"nnumba.optim.SGD, got {show(optimizer)}")
        given = {k: v for k, v in {"lr": lr, "momentum": momentum,
                                   "weight_decay": weight_decay}.items() if v is not None}
        if optimizer is not None and given:  # the optimizer has its own: these would be ignored
            raise SpecError(f"{owner}: {', '.join(given)} and optimizer= together: give "
                            f"{', '.join(given)} to the optimizer, e.g. nnumba.optim.SGD(model, "
                            f"lr=...), or leave optimizer= out")
        if getattr(optimizer, "model", model) is not model:  # it would update another model
            raise SpecError(f"{owner}: the optimizer was built for another model; build it "
                            f"with this one, e.g. nnumba.optim.SGD(model, lr=...)")
        self.batch_size = batch_size
        if seed is not None:  # None: fresh entropy, as numpy's
            seed = integer(owner, "seed", seed, 0, None)
        self.callbacks = callbacks
        self.model, self.loss = model, loss
        self.optimizer = optimizer or SGD(model, **given)  # SGD's defaults where not given
        self.rng = np.random.default_rng(seed)
        self.progress = flag(owner, "progress", progress)
        self.history = History()
        self.precompile = flag(owner, "precompile", precompile)
        self._checked_targets = set()

    def _refuse_while_fitting(self, name: str):
        """fit trains the model and loss it started with, in the batches it made: one
        a callback sets would go unused (the optimizer steps the first model)."""
        if self.__dict__.get("_batches") is not None:
            raise FitRunningError(f"{type(self).__name__}.{name} cannot change while fit runs "
                                  f"(a callback set it); set it between fit calls")

    @property
    def model(self):
        return self._model

    @model.setter
    def model(self, value):
        self._refuse_while_fitting("model")
        self._model = value

    @property
    def optimizer(self):
        return self._optimizer

    @optimizer.setter
    def optimizer(self, value):  # one of another model, set by a callback: fuzz 59
        self._refuse_while_fitting("optimizer")
        self._optimizer = value

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value):  # checked when set, later too: 0 would divide by zero
        self._refuse_while_fitting("batch_size")
        # batch sizes past the set are one batch; no array holds more than MAX_SIZE
        self._batch_size = integer(type(self).__name__, "batch_size", value, 1)

    # Checked when set, later too: a bad loss or callback would fail only in fit, a
    # callback after a whole epoch of updates.
    @property
    def loss(self):
        return self._loss

    @loss.setter
    def loss(self, value):
        from ..losses import Loss
        if not isinstance(value, Loss):
            hint = " (a class: add ())" if isinstance(value, type) and issubclass(value, Loss) \
                else ""
            raise DTypeError(f"{type(self).__name__}: loss must be an nnumba Loss instance such "
                             f"as CrossEntropy(), got {show(value)}{hint}")
        self._refuse_while_fitting("loss")
        self._loss = value

    @property
    def callbacks(self) -> list:
        return self._callbacks

    @callbacks.setter
    def callbacks(self, value):
        try:  # one function (callable, whatever else it is), or a list or tuple of them
            value = [value] if callable(value) or isinstance(value, (dict, str)) else \
                value if isinstance(value, list) else list(value)
        except TypeError:
            value = [value]
        self._callbacks = self._check_callbacks(value)

    def _check_callbacks(self, callbacks: list) -> list:
        """``callbacks`` (the list itself: a reference the user holds stays the
        trainer's), each a function of (trainer, row)."""
        for callback in callbacks:
            if not callable(callback) or not takes(callback, 2):
                raise DTypeError(f"{type(self).__name__}: callbacks must be functions "
                                 f"(trainer, row), got {show(callback)}")
        return callbacks

    def _optimizer_setting(name: str):  # noqa: N805 - called in the class body below
        """trainer.lr and the like: the optimizer's own (trainer.lr *= 0.5 in a callback
        changes the rate the next step uses, checked as SGD checks it)."""
        def get(self):
            return getattr(self.optimizer, name)

        def put(self, value):
            if not hasattr(self.optimizer, name):  # else a new attribute nothing reads
                raise SpecError(f"{type(self).__name__}: its optimizer "
                                f"{type(self.optimizer).__name__} has no setting {name}")
            setattr(self.optimizer, name, value)
        return property(get, put, doc=f"The optimizer's {name}.")

    lr = _optimizer_setting("lr")
    momentum = _optimizer_setting("momentum")
    weight_decay = _optimizer_setting("weight_decay")
    del _optimizer_setting

    def fit(self, x, y, epochs: int = 1, x_test=None, y_test=None) -> History:
        """Train for ``epochs``; after each, evaluate and call every callback(trainer, row)
        (whose forward calls return arrays of their own; it may set lr and the like,
        not model, loss, batch_size or optimizer: a FitRunningError)."""
        epochs = integer(type(self).__name__, "epochs", epochs, 0, None)
        self._check_callbacks(self.callbacks)  # one appended since: before any update
        # (model or optimizer reassigned since: the updates would miss the gradients)
        if getattr(self.optimizer, "model", self.model) is not self.model:
            raise SpecError(f"{type(self).__name__}: trainer.optimizer was built for another "
                            f"model than trainer.model; build a new trainer for the model")
        if getattr(self, "_batches", None) is not None:
            raise FitRunningError(f"{type(self).__name__}.fit is running: a callback cannot "
                                  f"call fit again (train on after it returns)")
        if (x_test is None) != (y_test is None):
            raise DTypeError(f"{type(self).__name__}.fit: x_test and y_test come together; "
                             f"got only {'x_test' if y_test is None else 'y_test'}")
        # Both sets are checked in full, with the loss, before the first step: a bad test
        # label would otherwise be found after a whole epoch of training.
        check_data(self.model, x, y)
        if x_test is not None:
            check_data(self.model, x_test, y_test, "test")
        # A penalty that cannot apply (Hinge's lam on a model without weights) is refused
        # here, on every MPI rank, not at the first step: rank 0 alone adds the penalty.
        self.loss.penalty(self.model.params())
        # The targets are checked while a cold cache's compile workers start.
        checks = functools.partial(self._check_targets, x, y, x_test, y_test)
        self._fit_start = time.perf_counter()
        if self.precompile and not self.history.epochs:
            self._precompile(x, y, checks)
        else:
            checks()
        model, loss = self.model, self.loss
        held, found = [], (model.layers[0].reuse_buffers, loss.reuse_buffers)  # (restored)
        try:
            hold_for_fit(model, loss, held)  # another thread's forward on them: refused
            self._reuse(model, loss, True)
            self._batches = Batches(model.device, x, y, self.batch_size,
                                    target_dtype(self.loss, model.dtype, y))
            for _ in range(int(epochs)):
                self._check_callbacks(self.callbacks)  # one a callback added: before updates
                if getattr(self.optimizer, "model", model) is not model:  # a callback's
                    self._refuse_while_fitting("optimizer's model")
                model.train()  # every epoch: a callback may have evaluated it in eval mode
                epoch = self.epochs_before + len(self.history.epochs) + 1
                start = time.perf_counter()
                bar = Progress(self._num_batches(len(x)), f"epoch {epoch}", self.progress)
                try:
                    train_loss = self._epoch(len(x), bar, epoch)
                finally:  # Ctrl-C or an error: its message starts on a clean line
                    bar.close()
                # The loss is checked before each update, not after the last one; one
                # pass over the flat parameters keeps non-finite weights from being saved.
                if not model.device.kernels.all_finite(model.flat_params):
                    raise self._diverged(f"the weights became NaN or infinite in epoch {epoch}")
                row = {"epoch": epoch, "train_loss": train_loss,
                       "seconds": time.perf_counter() - start}
                if x_test is not None:
                    metrics = evaluate(model, loss, x_test, y_test)
                    row["test_loss"], row["test_accuracy"] = metrics["loss"], metrics["accuracy"]
                    if not math.isfinite(row["test_loss"]):  # finite weights, outputs overflow
                        raise self._diverged(
                            f"the test loss became {row['test_loss']} after epoch {epoch}")
                self.history.epochs.append(row)
                callbacks = list(self.callbacks)  # (one added now runs from the next)
                # A callback's forward gets arrays of its own; reuse off drops the buffers,
                # which the next epoch makes again: only where a callback runs.
                if callbacks:
                    self._reuse(model, loss, False)
                for callback in callbacks:
                    callback(self, row)
                if callbacks:
                    self._reuse(model, loss, True)
        finally:  # each step in a finally of its own: a Ctrl-C in one skips no other
            try:
                if held:  # (none where another thread's fit holds them: not ours to reset)
                    self._reuse(model, loss, False)
                    if found[0]:  # the user's setting, as fit found it
                        model.reuse_buffers(True)
                    loss.reuse_buffers = found[1]
            finally:
                self._batches = None  # frees a device copy of the training set
                release_after_fit(held)
        return self.history

    @staticmethod
    def _reuse(model, loss, on: bool):
        """Outputs and loss gradients overwritten by the next batch's (on, while fit
        trains), or arrays of their own (off: callbacks and the caller keep them)."""
        model.reuse_buffers(on)
        loss.reuse_buffers = on

    def _check_targets(self, x, y, x_test, y_test):
        """Both target sets against the loss, and the test inputs finite: a bad test
        label or input would otherwise be found after a whole epoch."""
        # Checked once per (inputs, targets) arrays: fit(epochs=1) in a loop (a benchmark,
        # early stopping) pays it once; targets changed in place since are still met by
        # the loss at their batch (training) or in evaluate (test).
        for targets, inputs, what in ((y, x, "training targets"), (y_test, x_test, "test targets")):
            key = None if targets is None else (
                id(targets), targets.ctypes.data, targets.shape, targets.dtype.str,
                id(inputs), inputs.ctypes.data, inputs.shape, id(self.loss), id(self.model))
            if key is not None and key not in self._checked_targets:
                # (training inputs: each batch meets the first layer's check)
                found = what == "test targets" and non_finite(inputs)
                if found:
                    raise NonFiniteError(f"test inputs hold {found}")
                check_with_loss(self.model, self.loss, targets, inputs.shape[1:], what)
                if len(self._checked_targets) >= 8:  # partial_fit's chunks: keep it small
                    self._checked_targets.clear()
                self._checked_targets.add(key)

    #: what nnumba.precompile did before the first epoch (None: not asked)
    precompile_info = None

    def _precompile(self, x, y, checks):
        """Compile the kernels over several processes when numba's cache is cold,
        running ``checks()`` meanwhile."""
        from ..precompile import precompile

        def announce(processes):
            if self.progress:
                print(f"compiling the kernels for a cold cache in {processes} processes...",
                      file=sys.stderr, flush=True)

        self.precompile_info = info = precompile(self.model, self.loss, x, y,
                                                 optimizer=self.optimizer, on_start=announce,
                                                 checks=checks, batch_size=self.batch_size)
        if self.progress and "seconds" in info:
            print(f"compiled in {info['seconds']:.1f} s (cached for the next run)",
                  file=sys.stderr)

    def _num_batches(self, n: int) -> int:
        return math.ceil(n / self.batch_size)

    def _batch_loss(self, xb, yb, weight: float, epoch: int, step: int) -> float:
        """Forward, loss and backward of one mini-batch; gradients are accumulated."""
        model, loss = self.model, self.loss
        value = loss.forward(model.forward(xb), yb)
        if not math.isfinite(value):
            raise self._diverged(f"the loss became {value} at epoch {epoch}, batch {step + 1}")
        model.backward(loss.backward(weight))
        return value

    def _diverged(self, what: str) -> TrainingDiverged:
        return diverged(self, what)

    # ---- what a saved model keeps of its training (nnumba.checkpoint) -------------------
    def state(self, model=None) -> tuple[dict, np.ndarray | None]:
        """(settings and batch-order generator state, JSON-able; the momentum buffer
        on the host, or None before the first step): what ``nnumba.save(model, path,
        training=trainer)`` stores for training on ``model``, this trainer's model
        or a copy of it on another device."""
        from ..registry import get_registry
        check_not_fitting(self.model, "this trainer's model")  # a state of mixed moments
        if model is not None and model is not self.model and model.spec() != self.model.spec():
            raise SaveError("save: training= takes the trainer of the model saved; this "
                            "one trains another model")
        registry = get_registry()
        loss = registry.name_of("loss", type(self.loss))
        if type(self.optimizer) is not SGD or loss is None:  # nothing could rebuild it
            raise SaveError(f"save: training= keeps an nnumba.SGD and a registered loss; "
                            f"this trainer has {type(self.optimizer).__name__} and "
                            f"{type(self.loss).__name__}")
        velocity = self.optimizer.velocity
        layers = {str(i): g.bit_generator.state for i, g in self._generators()}
        entry = registry.entry("loss", loss)  # whose: a plugin since may claim its name
        return ({"trainer": self.kind, "loss": loss, "loss_options": savable_options(self.loss),
                 "loss_plugin": None if entry.builtin else entry.plugin,
                 **self.optimizer.config(),
                 "batch_size": self.batch_size, "rng": self.rng.bit_generator.state,
                 "layers": layers, "epochs": self.epochs_before + len(self.history.epochs),
                 "shuffle": getattr(self, "shuffle", None),
                 "drop_last": getattr(self, "drop_last", None), "layout": layout(self.model)},
                None if velocity is None else np.array(self.model.device.to_host(velocity)))

    def _generators(self) -> list:
        """[(index, generator)] of the model's layers that draw as they run (Dropout)."""
        found = [(i, layer.random_generator()) for i, layer in enumerate(self.model.layers)]
        return [(i, g) for i, g in found if g is not None]

    def resume(self, stored: dict, rng: bool = True):
        """Go on from ``stored`` (:func:`nnumba.checkpoint.stored_training` of this
        model's file): its momentum buffer, and with ``rng`` its batch order and the
        draws of layers such as Dropout (without: both from this trainer's seed).
        Another trainer kind's is refused; another loss or settings are warned of."""
        if not isinstance(stored, dict) or not {"velocity", "rng"} <= stored.keys():
            hint = ": that file holds no training (save it with training=trainer)" \
                if stored is None else ""
            raise SpecError(f"{type(self).__name__}.resume takes what nnumba.stored_training"
                            f"(path) returns, got {show(stored)}{hint}")
        name, velocity, model = f"{type(self).__name__}.resume", stored["velocity"], self.model
        check_velocity(velocity, model, name)
        check_layout(stored, model, name)
        epochs = stored_epochs(stored, name)
        kind = stored.get("trainer", self.kind)  # (a record made by hand may leave it out)
        if kind != self.kind:  # a GD buffer is per epoch, SGD's per batch: not one run
            raise SpecError(f"{name}: the stored training is of trainer {show(kind)}, this "
                            f"is {self.kind!r} ({type(self).__name__}); resume it with the "
                            f"kind it was saved with, or train this one afresh")
        generators, kept = self._generators(), stored.get("layers", {})
        if rng:
            if not isinstance(kept, dict) or sorted(kept) != sorted(str(i) for i, _ in generators):
                raise SpecError(f"{name}: the stored training kept the generators of layers "
                                f"{sorted(kept) if isinstance(kept, dict) else show(kept)}, "
                                f"the model's draw in {[str(i) for i, _ in generators]}")
            for state in [stored["rng"], *(kept[str(i)] for i, _ in generators)]:
                try:  # numpy checks a state itself
                    np.random.default_rng().bit_generator.state = state
                except (TypeError, ValueError, KeyError, OverflowError) as exc:
                    raise SpecError(f"{name}: not a generator state ({exc})") from None
        # everything checked: a refused resume leaves the trainer as it was
        warn_settings(self, stored, name)
        # the next epoch is the stored run's next, whatever this trainer's history holds
        # (a rollback to its own checkpoint): rows number on from len(history) + this
        self.epochs_before = epochs - len(self.history.epochs)
        if velocity is not None:
            self.optimizer.velocity = model.device.to_device(velocity.astype(model.dtype))
        if not rng:  # the batch order of this trainer's seed, and layers' draws from it
            for _, g in generators:
                g.bit_generator.state = np.random.default_rng(
                    self.rng.integers(2**63)).bit_generator.state
            return
        self.rng.bit_generator.state = stored["rng"]
        for i, g in generators:
            g.bit_generator.state = kept[str(i)]

    #: the name ``nnumba train --trainer`` knows this trainer by
    kind = "sgd"

    #: what the history's rows number theirs on from: the epochs of the training it
    #: resumed, less the rows its history held then
    epochs_before = 0

    #: updates applied by this trainer's fit calls so far; Ctrl-C (KeyboardInterrupt)
    #: in fit leaves the model with the weights of the last of them (SGD's update is
    #: one kernel: nothing half-applied) and ``history`` with the epochs completed
    updates = 0

    #: seconds from fit() to the end of the first update: mostly JIT compilation
    #: on a cold cache, and the cost a user waits before training really starts
    first_step_seconds = None

    # ---- the hooks of data-parallel training ---------------------------------------------
    def _local(self, idx: np.ndarray) -> np.ndarray:
        """The part of a global batch (or of the whole set) this process computes."""
        return idx

    def _penalty(self, params) -> float:
        """The loss's term on the parameters, with its gradient added."""
        value = self.loss.penalty(params)
        self.loss.penalty_backward(params)
        return value

    def _step(self):
        """Apply the accumulated gradients."""
        self.optimizer.step()
        self.updates += 1
        if self.first_step_seconds is None:
            self.first_step_seconds = time.perf_counter() - self._fit_start

    def _total(self, value: float) -> float:
        """A sum over this process's samples, as a sum over all samples."""
        return value

    def _epoch(self, n, bar, epoch) -> float:
        raise NotImplementedError
