"""What a model checks of the layers it is built from: each used once, by one model,
and none holding layers of its own."""
from .errors import ContractError, SpecError
from .layers.contract import Layer


def check_unshared(layer, i, j, model):
    """Item i (first seen as item j) may be neither an item before it nor a layer of
    another live model: a layer keeps one input and one gradient, and its parameters
    live in its model's flat buffer, so sharing it trains wrongly or not at all."""
    if j != i:
        raise SpecError(f"Sequential: items #{j} and #{i} are the same {layer.type_name} "
                        f"object; a layer can be used once (build another, or "
                        f"copy.deepcopy it for the same starting weights)")
    owner = layer.container() if layer.container is not None else None
    if owner is not None and owner is not model:
        raise SpecError(f"Sequential: item #{i} ({layer.type_name}) belongs to another model "
                        f"already, which would stop training it; build a new layer, or use "
                        f"that model's copy()")


def check_no_inner_layer(layer, what: str, error=ContractError):
    """A layer may not hold layers of its own: a model trains, converts and moves the
    parameters of the layers it lists, so an inner layer's would silently never train."""
    for attr, value in vars(layer).items():
        items = value.values() if isinstance(value, dict) else \
            value if isinstance(value, (list, tuple)) else (value,)
        inner = next((v for v in items if isinstance(v, Layer)), None)
        if inner is not None:
            raise error(
                f"{what} holds a layer, {inner.type_name}, in its attribute {attr!r}; a model "
                f"trains only the layers it lists, so that one would never train. List the "
                f"layers in the model one after another (docs/plugins.md, 'Layers inside "
                f"layers')")
