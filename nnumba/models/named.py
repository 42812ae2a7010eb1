"""The contract of a named model, as the ``nnumba_register_models`` hook returns it."""
from __future__ import annotations

import inspect
import math
import operator
from dataclasses import dataclass, field
from typing import Callable

from ..errors import NnumbaError, SpecError


#: what a model without train_defaults trains with
FALLBACK_DEFAULTS = {"epochs": 10, "lr": 0.05, "momentum": 0.9, "batch_size": 100,
                     "loss": "CrossEntropy"}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _count(value) -> bool:
    return _number(value) and value == int(value) and value >= 1


#: setting -> (its test, what it must be)
_SETTING_CHECKS = {
    "epochs": (_count, "an integer >= 1"), "batch_size": (_count, "an integer >= 1"),
    "lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "momentum": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "loss": (lambda v: isinstance(v, str) and bool(v.strip()), "a registered loss name")}


@dataclass(frozen=True)
class NamedModel:
    """A model that a name builds.

    - ``build(**options)`` returns the model's spec, a JSON-serialisable list of
      layer dicts (``nnumba train --model NAME --model-option key=value`` and
      ``nnumba.build(NAME, **options)`` pass the options);
    - ``input_shape``: the per-sample input it is built for, a tuple of integer
      sizes (its usual ones where its layers take any length), or a function of the
      same options returning it; None where the model takes any (``nnumba
      summary``, ``nnumba classify`` and ``check_model`` make inputs of it);
    - ``train_defaults``: the settings ``nnumba train`` starts from (epochs, lr,
      momentum, batch_size, and loss: a registered loss name), where the model
      needs others than the fallback 10 epochs at lr 0.05, momentum 0.9, batch
      100, CrossEntropy; checked here, so that a misspelt one is no silent fallback;
    - ``description``: one line for ``nnumba plugins`` (default: the first
      sentence of ``build``'s docstring).
    """
    build: Callable[..., list]
    input_shape: tuple | Callable[..., tuple] | None = None
    train_defaults: dict = field(default_factory=dict)
    description: str = ""

    def __post_init__(self):
        # Plain checks: nnumba.layers would import the registry, which imports this.
        owner = self._owner()
        if not callable(self.input_shape):
            _sizes(owner, self.input_shape)
        settings = self.train_defaults
        if not isinstance(settings, dict):
            raise SpecError(f"{owner}: train_defaults must be a dict, got {settings!r:.60}")
        unknown = sorted(map(str, set(settings) - set(FALLBACK_DEFAULTS)))
        if unknown:
            raise SpecError(f"{owner}: train_defaults has no setting {', '.join(unknown)}; "
                            f"its settings: {', '.join(FALLBACK_DEFAULTS)}")
        for key, value in settings.items():
            test, want = _SETTING_CHECKS[key]
            if not test(value):
                raise SpecError(f"{owner}: train_defaults {key} must be {want}, got "
                                f"{value!r:.60}")

    def __call__(self, **options) -> list:
        return self.build(**options)

    def spec(self, name: str, /, **options) -> list:
        """``build(**options)``; SpecError, naming the model, for an option it does not
        take (one named ``name`` or ``self`` too) or a value its builder refuses with a
        plain TypeError/ValueError."""
        known = self.options()
        unknown = sorted(set(options) - set(known))
        takes_any = any(p.kind is p.VAR_KEYWORD
                        for p in inspect.signature(self.build).parameters.values())
        if unknown and not takes_any:
            raise SpecError(f"model {name!r} has no option {', '.join(unknown)}; its options: "
                            f"{', '.join(known) or '(none)'}")
        try:
            return self.build(**options)
        except NnumbaError:
            raise
        except (TypeError, ValueError) as exc:
            raise SpecError(f"model {name!r}: {exc}") from None

    def input_shape_for(self, name: str | None = None, /, **options) -> tuple | None:
        """The per-sample input shape for these options, or None; a SpecError naming
        the model (``name``) for one that is no tuple of sizes >= 1, or where the
        shape function refuses the options (chained: its own line stays)."""
        owner = f"model {name!r}" if name else self._owner()
        shape = self.input_shape
        if callable(shape):
            try:
                shape = shape(**options)
            except NnumbaError:
                raise
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise SpecError(f"{owner}: its input shape for these options: {exc}") from exc
        return _sizes(owner, shape)

    def _owner(self) -> str:
        return f"NamedModel({getattr(self.build, '__name__', 'build')})"

    def options(self) -> dict:
        """{option: default} of ``build`` (``inspect.Parameter.empty`` where required)."""
        return {name: p.default for name, p in inspect.signature(self.build).parameters.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _sizes(owner: str, shape) -> tuple | None:
    if shape is None:
        return None
    try:
        sizes = tuple(shape)
        if all(not isinstance(d, bool) and operator.index(d) >= 1 for d in sizes):
            return tuple(operator.index(d) for d in sizes)
    except TypeError:  # not a sequence, or a size that is no integer
        pass
    raise SpecError(f"{owner}: input_shape must be None or a tuple of integer sizes >= 1 "
                    f"(the usual ones where its layers take any length: summary, classify "
                    f"and check_model make inputs of it), got {shape!r:.80}")


def named(obj) -> NamedModel:
    """A hook's value as a NamedModel: a plain factory function is wrapped."""
    if isinstance(obj, NamedModel):
        return obj
    if not callable(obj):
        raise TypeError(f"a named model is a NamedModel or a function returning a spec, "
                        f"got {obj!r:.80}")
    return NamedModel(obj)
