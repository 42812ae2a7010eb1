"""A tiny registry of experiments: name -> recipe, filled by the modules in MODULES."""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Callable

from ..errors import NnumbaError, RegistryError, SpecError, TooLargeError
from ..registry import unknown_name_message

# One module per experiment or closely related group, in the lecture's order;
# imported on first use so that `import nnumba` stays light.
MODULES = ("threshold", "perceptron_mnist", "bound", "svm", "xor", "polynomial", "products",
           "knn", "hog",
           # the second half: MLPs, gradient descent, SGD, convolutions
           "affine", "activations", "tanh_relu", "universal", "universal2d", "descent",
           "logistic", "backprop", "chain_rule", "replicated", "escape", "minibatch", "image_size",
           "conv1d", "pooling", "cnn")

EXPERIMENTS: dict[str, "Experiment"] = {}


@dataclass(frozen=True)
class Experiment:
    name: str
    summary: str                   # one line for `nnumba experiment list`
    recipe: Callable
    slide: str = ""                # the lecture's slide (its title) that it reproduces
    quote: str = ""                # the lecture's claim there, quoted briefly
    features: tuple = ()           # layers it takes from the nnumba-features plugin
    options: tuple = ()            # command-line options it uses (e.g. "data_dir")

    def run(self, out_dir=None, fast: bool = False, **options):
        """Run the recipe; ``options`` are its keyword arguments beyond out_dir and fast."""
        from ..layers.validation import flag
        from ..paths import user_path
        params = inspect.signature(self.recipe).parameters
        known = [p for p in params if p not in ("out_dir", "fast")]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise SpecError(f"experiment {self.name!r} takes no option {', '.join(unknown)}"
                            f" (it takes: {', '.join(known) or 'none'})")
        fast = flag(f"experiment {self.name!r}", "fast", fast)  # "no" would run fast
        if out_dir is not None:  # 3 or a NUL byte: a bare TypeError / ValueError at the figure
            user_path(out_dir, f"experiment {self.name!r}: out_dir", SpecError)
        options = {k: _checked(self.name, k, v, params[k]) for k, v in options.items()}
        try:
            return self.recipe(out_dir=out_dir, fast=fast, **options)
        except MemoryError as exc:
            if isinstance(exc, NnumbaError):
                raise
            raise TooLargeError(f"experiment {self.name!r}: its arrays for "
                                f"{_given(options, params)} do not fit in memory") from exc
        except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
            if not options or isinstance(exc, NnumbaError):  # nnumba's own errors say it
                raise
            # an option's value the recipe cannot take: named
            raise SpecError(f"experiment {self.name!r} cannot run with "
                            f"{_given(options, params)}: {type(exc).__name__}: {exc}") from exc


def _given(options, params) -> str:
    return ", ".join(f"{k}={v!r:.40} (default {params[k].default!r:.40})"
                     for k, v in options.items())


def _checked(name, option, value, param):
    """An option's value as the recipe takes it: a count (annotated int) an integer >= 1
    (a 0 ran the default, `epochs or 60`), a flag a bool."""
    from ..layers.validation import flag, integer
    owner = f"experiment {name!r}"
    kind = param.annotation if isinstance(param.annotation, str) else \
        getattr(param.annotation, "__name__", str(param.annotation))
    if kind in ("int", "int | None"):
        return value if value is None and kind != "int" else integer(owner, option, value)
    return flag(owner, option, value) if kind == "bool" else value


def experiment(name: str, summary: str, slide: str, quote: str, features=(), options=()):
    """Decorator registering ``recipe`` under ``name``; ``slide`` and ``quote`` say
    what of the lecture it reproduces (the report shows them above the result)."""
    def register(recipe):
        if name in EXPERIMENTS and EXPERIMENTS[name].recipe is not recipe:
            raise RegistryError(f"experiment {name!r} is registered twice")
        EXPERIMENTS[name] = Experiment(name, summary, recipe, slide, quote, tuple(features),
                                       tuple(options))
        return recipe
    return register


def _load():
    for module in MODULES:
        importlib.import_module(f"{__package__}.{module}")


def list_experiments() -> list[Experiment]:
    """Every experiment in the lecture's order (that of MODULES, whatever was imported first)."""
    _load()
    order = {f"{__package__}.{module}": i for i, module in enumerate(MODULES)}
    return sorted(EXPERIMENTS.values(), key=lambda e: order.get(e.recipe.__module__, len(order)))


def get_experiment(name: str) -> Experiment:
    _load()
    if not isinstance(name, str) or name not in EXPERIMENTS:
        # (experiments are nnumba's own: no plugin adds one)
        raise RegistryError(unknown_name_message("experiment", name, EXPERIMENTS, plugins=False))
    return EXPERIMENTS[name]


def run_experiment(name: str, out_dir=None, fast: bool = False, **options):
    return get_experiment(name).run(out_dir=out_dir, fast=fast, **options)
