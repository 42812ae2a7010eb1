"""AlexNet as torchvision defines it (Krizhevsky et al. 2012, the one-GPU variant), so
that a torchvision ``state_dict`` imports by layer order and shape
(:mod:`nnumba.torch_import`). 61,100,840 parameters for 1000 classes."""
from ..hookspecs import hookimpl
from .named import NamedModel


def _conv(c_in, c_out, kernel, stride=1, padding=0):
    return {"type": "Conv2d", "in_channels": c_in, "out_channels": c_out,
            "kernel_size": kernel, "stride": stride, "padding": padding}


def alexnet(num_classes: int = 1000, dropout: float = 0.5):
    """3 x 224 x 224 images to ``num_classes`` logits (any size >= 63 x 63 works:
    the adaptive pooling brings the features to 256 x 6 x 6)."""
    relu, pool = {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 3, "stride": 2}
    features = [_conv(3, 64, 11, stride=4, padding=2), relu, pool,
                _conv(64, 192, 5, padding=2), relu, pool,
                _conv(192, 384, 3, padding=1), relu,
                _conv(384, 256, 3, padding=1), relu,
                _conv(256, 256, 3, padding=1), relu, pool]
    classifier = [{"type": "Dropout", "p": dropout},
                  {"type": "Linear", "in_features": 256 * 6 * 6, "out_features": 4096}, relu,
                  {"type": "Dropout", "p": dropout},
                  {"type": "Linear", "in_features": 4096, "out_features": 4096}, relu,
                  {"type": "Linear", "in_features": 4096, "out_features": num_classes}]
    return features + [{"type": "AdaptiveAvgPool2d", "output_size": 6},
                       {"type": "Flatten"}] + classifier


nnumba_register_models = hookimpl(lambda: {"alexnet": NamedModel(alexnet, (3, 224, 224))})
