"""The entry point nnumba loads (group "nnumba"): one hook, the same built-ins use."""
from nnumba import hookimpl

from .layers import LeakyReLU, Softplus
from .low_rank import LowRankLinear


@hookimpl
def nnumba_register_layers():
    return {"LeakyReLU": LeakyReLU, "Softplus": Softplus, "LowRankLinear": LowRankLinear}
