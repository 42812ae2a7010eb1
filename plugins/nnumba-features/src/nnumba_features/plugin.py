"""The entry point nnumba loads (group "nnumba"): the same hook the built-ins use."""
from nnumba import hookimpl

from .layers import HOG, PolynomialFeatures, Radius, RandomPairProducts, XorProduct

LAYERS = (XorProduct, PolynomialFeatures, RandomPairProducts, Radius, HOG)


@hookimpl
def nnumba_register_layers():
    return {cls.type_name: cls for cls in LAYERS}
