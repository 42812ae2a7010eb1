"""Layers: the contract in :mod:`.base`, one module per family."""
from .activation import Identity, ReLU, Sigmoid, Tanh, Threshold
from .base import Layer, Parameter, seed
from .linear import Linear
from .shape import Flatten

__all__ = ["Layer", "Parameter", "seed", "Linear", "ReLU", "Tanh", "Sigmoid",
           "Threshold", "Identity", "Flatten"]
