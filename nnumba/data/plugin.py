"""The built-in data sets, registered through the same hook a plugin would use."""
from ..hookspecs import hookimpl
from .datasets import DATASETS


@hookimpl
def nnumba_register_datasets():
    return dict(DATASETS)
