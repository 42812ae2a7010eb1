"""LeakyReLU and Softplus for nnumba (an example plugin distribution)."""
from .layers import LeakyReLU, Softplus

__all__ = ["LeakyReLU", "Softplus"]
