"""Named models: what ``nnumba_register_models`` returns, and the built-in ones
(one module each, each a plugin registering through that hook)."""
from .named import NamedModel, named

__all__ = ["NamedModel", "named"]
