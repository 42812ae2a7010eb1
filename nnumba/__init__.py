"""nnumba: a from-scratch neural-network engine with Numba kernels and pluggy plugins."""
from . import _threads
from .distributed.threads import _running_the_cli, apply_thread_env

if _running_the_cli():  # numba's warnings at import (a bad NUMBA_* variable): one line,
    from .cli import quiet_import_warnings, quiet_interrupt  # and Ctrl-C: no traceback
    quiet_import_warnings()
    quiet_interrupt()
_threads.preload_tbb()  # before numba chooses its threading layer
apply_thread_env()      # under mpiexec: each rank's share of the cores, before any pool starts

from .errors import (ContractError, DataFileError, DatasetError, DeviceError,  # noqa: E402
                     DeviceUnavailableError, DTypeError, FileFormatError, LabelError,
                     MissingFileError, NnumbaError, NoGradientError, NonFiniteError,
                     RegistryError, SaveError, ShapeError, SpecError, TooLargeError,
                     TrainingDiverged, WeightsError, FitRunningError, DownloadError,
                     JSONFileError, MPIUnavailableError)
from .hookspecs import hookimpl  # noqa: E402
from .io import load_model, load_weights, save  # noqa: E402
from .checkpoint import stored_training  # noqa: E402
from .layers import Layer, Parameter, seed  # noqa: E402
from .losses import Loss  # noqa: E402
from .model import Sequential  # noqa: E402
from .models.fitting import is_model_name  # noqa: E402
from .optim import SGD  # noqa: E402
from .registry import (get_dataset, get_layer, get_loss, get_model,  # noqa: E402
                       get_registry, register_plugin, unregister_plugin)
from .train import GDTrainer, SGDTrainer, train_perceptron  # noqa: E402
from .torch_import import load_torch_weights  # noqa: E402

__version__ = "0.1.0"


def build(spec_or_name, /, seed: int | None = 0, **options) -> Sequential:
    """A model from a spec (list of layer dicts) or a registered model name; ``options``
    go to a named model (positional ``spec_or_name``: an option may have that name)."""
    if is_model_name(spec_or_name):
        spec_or_name = get_model(spec_or_name).spec(spec_or_name, **options)
    elif options:
        raise SpecError(f"options ({', '.join(map(str, options))}) apply to named models "
                        f"only, not to a spec")
    return Sequential.from_spec(spec_or_name, seed=seed)


__all__ = ["Sequential", "Layer", "Parameter", "Loss", "SGD", "SGDTrainer", "GDTrainer",
           "train_perceptron", "build", "save", "load_model", "load_weights",
           "load_torch_weights", "stored_training", "seed",
           "hookimpl", "register_plugin", "unregister_plugin", "get_registry", "get_layer",
           "get_loss", "get_model", "get_dataset", "NnumbaError", "ShapeError", "DTypeError",
           "NonFiniteError", "LabelError", "NoGradientError", "RegistryError", "WeightsError",
           "SpecError", "ContractError", "TooLargeError", "SaveError", "MissingFileError",
           "FileFormatError", "DataFileError", "DatasetError", "TrainingDiverged",
           "DeviceError", "DeviceUnavailableError", "FitRunningError", "DownloadError",
           "JSONFileError", "MPIUnavailableError"]
