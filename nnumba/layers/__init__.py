"""Layers: the contract in :mod:`.contract` (input checks in :mod:`.validation`),
one module per family."""
from .activation import Identity, ReLU, Sigmoid, Tanh, Threshold
from .adaptive_pool import AdaptiveAvgPool2d
from .contract import CONTAINER_FLAGS, Layer, Parameter, seed, shapes_only
from .conv import Conv1d, Conv2d
from .conv3d import Conv3d
from .dropout import Dropout
from .linear import Linear
from .pool import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d, ReLUMaxPool1d, ReLUMaxPool2d
from .shape import Flatten

__all__ = ["Layer", "Parameter", "seed", "shapes_only", "CONTAINER_FLAGS", "Linear", "ReLU",
           "Tanh", "Sigmoid", "Threshold", "Identity", "Flatten", "Conv1d", "Conv2d", "Conv3d",
           "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "ReLUMaxPool1d",
           "ReLUMaxPool2d", "AdaptiveAvgPool2d", "Dropout"]
