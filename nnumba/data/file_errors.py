"""What the data file readers share: their error (nnumba.errors.DataFileError), and
float32's limits on the numbers they convert."""
import numpy as np

from ..errors import DataFileError  # noqa: F401 - the readers import it from here

FLOAT32_MAX = float(np.finfo(np.float32).max)
EXACT_INT = 2 ** 24  # float32 holds every integer up to this, not all beyond


def too_large_integers(path, what, top: str) -> str:
    return (f"{path}: {what} holds integers beyond +-2**24 = {EXACT_INT:,} (up to {top}), "
            f"which float32 cannot hold exactly: neighbours would merge; scale them, or "
            f"save them as floats if their rounding does not matter")
