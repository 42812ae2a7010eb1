"""LeakyReLU, Softplus and LowRankLinear for nnumba (an example plugin distribution)."""
from .layers import LeakyReLU, Softplus
from .low_rank import LowRankLinear

__all__ = ["LeakyReLU", "Softplus", "LowRankLinear"]
