"""The exceptions nnumba raises: each says what was expected, what came, and where.
Every error nnumba raises for what it was given subclasses NnumbaError (the kit's
ConformanceError, an AssertionError, is nnumba.testing's; Python's own TypeError
for a missing or unknown argument stays Python's)."""


class NnumbaError(Exception):
    """Base class of nnumba's own errors."""


class ShapeError(NnumbaError, ValueError):
    """An array has the wrong shape (or is empty) for the layer or loss it was given to."""


class DTypeError(NnumbaError, TypeError):
    """An array has the wrong dtype (or is not an array)."""


class NonFiniteError(NnumbaError, ValueError):
    """An input holds NaN or infinity."""


class LabelError(NnumbaError, ValueError):
    """Labels out of range, of the wrong kind, or not matching the predictions."""


class NoGradientError(NnumbaError, RuntimeError):
    """backward() was asked of an operation that has no useful gradient."""


class ContractError(NnumbaError, TypeError):
    """A plugin layer breaks the layer contract in a way a model would not notice (a
    parameter rebound instead of written in place, super().__init__() skipped)."""


class RegistryError(NnumbaError, LookupError, ValueError):
    """An unknown name, or one name registered twice."""


class WeightsError(NnumbaError, ValueError):
    """A weights file does not fit the model it is loaded into."""


class TooLargeError(NnumbaError, MemoryError):
    """Something would need more memory than the machine has: refused before trying."""


class SpecError(NnumbaError, ValueError):
    """A model spec (a list of layer dicts) that cannot be built."""


class FileFormatError(NnumbaError, ValueError):
    """A file cannot be read or does not hold what was expected; the message names it."""


class JSONFileError(FileFormatError):
    """A JSON file (a model spec, a labels file) is unreadable, not JSON, or nested too deep."""


class DuplicateKeyError(JSONFileError):
    """A JSON object names one key twice (json itself would keep the last silently)."""


class IDXError(FileFormatError):
    """A file is not a well-formed IDX file (MNIST's format)."""


class ImageError(FileFormatError):
    """An image cannot be read, or is too large to decode safely."""


class MissingFileError(NnumbaError, FileNotFoundError):
    """A file or folder that was asked for does not exist; the message names it."""


class SaveError(NnumbaError, OSError):
    """Weights cannot be written where they were asked to go."""


class DownloadError(NnumbaError, OSError):
    """A download failed, ran past its deadline, or its checksum did not match; nothing was kept."""


class DataFileError(NnumbaError, ValueError):
    """A data file cannot be used as it is; the message names the file and says why."""


class DatasetError(NnumbaError, ValueError):
    """A data set loader broke the Dataset contract (or raised); ``plugin`` names the
    plugin whose loader raised (its bug: the command line says so, status 1)."""

    plugin: str | None = None
    #: the loader returned arrays as documented whose values are wrong (NaN, a label out
    #: of range): maybe the data's fault, where the kinds and shapes are the loader's
    in_values: bool = False


class FitRunningError(NnumbaError, RuntimeError):
    """A callback asked what the running fit() would not follow (another model, loss,
    batch size or optimizer for its trainer, another dtype for its model, a second
    fit): refused until fit returns."""


class TrainingDiverged(NnumbaError, FloatingPointError):
    """The loss became NaN or infinite."""


class DeviceUnavailableError(NnumbaError, RuntimeError):
    """A device was asked for that this machine cannot run."""


class DeviceError(NnumbaError, ValueError):
    """Something cannot run on (or move to) the device asked for."""


class MPIUnavailableError(NnumbaError, ImportError):
    """MPI training was asked for but mpi4py cannot be imported."""


class Terminated(KeyboardInterrupt):
    """A command ended by SIGTERM (``timeout``, Slurm, ``docker stop``, systemd), which
    ``nnumba`` handles as Ctrl-C: ``nnumba train --save`` keeps the weights trained so
    far.  ``status`` is 128 + the signal's number, as a shell reports it."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum, self.status = signum, 128 + signum


def raise_terminated(signum, _frame):
    """The SIGTERM handler of ``nnumba``'s own process (cli.main)."""
    raise Terminated(signum)


def stop_status(stop: BaseException) -> tuple[str, int]:
    """(word, exit status) for a command stopped by ``stop``: Ctrl-C or a Terminated."""
    if isinstance(stop, Terminated):
        return "terminated", stop.status
    return "interrupted", 130


def caused_by_interrupt(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (or Terminated) behind ``exc``, or None: Python 3.11 wraps a
    KeyboardInterrupt raised while a class body runs (an import, say) in a RuntimeError,
    as its __cause__.  (Not __context__: an error raised while Ctrl-C was being handled,
    a failed save of the weights, is an error of its own.)"""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__
    return None
