"""What the data file readers share: their error, and float32's limits on the numbers
they convert."""
import numpy as np

from ..errors import NnumbaError

FLOAT32_MAX = float(np.finfo(np.float32).max)
EXACT_INT = 2 ** 24  # float32 holds every integer up to this, not all beyond


class DataFileError(NnumbaError, ValueError):
    """A data file cannot be used as it is; the message names the file and says why."""


def too_large_integers(path, what, top: str) -> str:
    return (f"{path}: {what} holds integers beyond +-2**24 = {EXACT_INT:,} (up to {top}), "
            f"which float32 cannot hold exactly: neighbours would merge; scale them, or "
            f"save them as floats if their rounding does not matter")
