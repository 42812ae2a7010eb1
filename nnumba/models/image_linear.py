"""The lecture's argument for convolutions: one Linear layer from a 256 x 256 RGB image
to an image of the same size needs (256*256*3)^2 = 3.87e10 weights, about 150 GB in
float32. Meant for ``nnumba summary image-linear``, which sizes it without allocating
it; building it for real would need that memory."""
from ..hookspecs import hookimpl
from ..layers.validation import integer
from .named import NamedModel


def image_linear(height: int = 256, width: int = 256, channels: int = 3, bias: bool = False):
    """Flatten, then Linear(H*W*C, H*W*C): every output pixel sees every input pixel.
    No bias by default, so the count is exactly the lecture's (H*W*C)^2."""
    size = 1  # (each checked first: -2 x -3 built Linear(18, 18), "3" * 256 a long string)
    for name, value in (("height", height), ("width", width), ("channels", channels)):
        size *= integer("image-linear", name, value, 1, None)
    return [{"type": "Flatten"},
            {"type": "Linear", "in_features": size, "out_features": size, "bias": bias}]


nnumba_register_models = hookimpl(lambda: {"image-linear": NamedModel(
    image_linear, lambda height=256, width=256, channels=3, **_: (channels, height, width))})
