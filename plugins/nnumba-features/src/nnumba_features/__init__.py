"""nnumba-features: the MLP lecture's hand-designed features as nnumba layers."""
from .layers import HOG, PolynomialFeatures, Radius, RandomPairProducts, XorProduct

__all__ = ["XorProduct", "PolynomialFeatures", "RandomPairProducts", "Radius", "HOG"]
__version__ = "0.1.0"
