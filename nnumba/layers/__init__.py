"""Layers: the contract in :mod:`.base`, one module per family."""
from .activation import Identity, ReLU, Sigmoid, Tanh, Threshold
from .adaptive_pool import AdaptiveAvgPool2d
from .base import Layer, Parameter, seed
from .conv import Conv1d, Conv2d
from .dropout import Dropout
from .linear import Linear
from .pool import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from .shape import Flatten

__all__ = ["Layer", "Parameter", "seed", "Linear", "ReLU", "Tanh", "Sigmoid",
           "Threshold", "Identity", "Flatten", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d",
           "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool2d", "Dropout"]
