"""What a model spec must look like, and a layer built from one of its items."""
import inspect

from .errors import NnumbaError, RegistryError, SpecError, TooLargeError
from .layers.contract import Layer
from .layers.validation import show


def check_spec(spec) -> list:
    """``spec`` (a list of layer dicts, or its JSON text) checked for its shape, or
    SpecError saying what is wrong."""
    if isinstance(spec, str):
        from .jsonfile import parse_json
        try:  # with parse_json's depth limit: nothing below recurses on the values
            spec = parse_json(spec, "a model spec")
        except ValueError as exc:
            raise SpecError(str(exc)[:300]) from None
    if not isinstance(spec, (list, tuple)) or not spec:
        raise SpecError(f"a model spec is a non-empty list of layer dicts, got "
                        f"{show(spec)}")
    for i, item in enumerate(spec):
        if not isinstance(item, dict) or "type" not in item:
            raise SpecError(f"model spec item #{i} must be a dict with a 'type' key, "
                            f"got {show(item)}")
        if not isinstance(item["type"], str):
            raise SpecError(f"model spec item #{i}: 'type' must be a layer name (a string), "
                            f"got {show(item['type'])}")
        for key in item:
            if not isinstance(key, str):  # only Python callers can: JSON keys are text
                raise SpecError(f"model spec item #{i} ({show(item['type'])}): argument "
                                f"names are strings, got {show(key)}")
    return list(spec)


def build_layer(item: dict, index: int) -> Layer:
    """The layer of spec item ``index`` (checked by check_spec), or an nnumba error
    whose message starts with the item: SpecError for a missing, unknown or refused
    argument (whatever the constructor raised: a plugin's may raise anything),
    TooLargeError for parameters too large to allocate."""
    from .registry import get_layer
    name = item["type"]
    try:
        layer_class = get_layer(name)
    except RegistryError as exc:
        raise SpecError(f"model spec item #{index}: {exc}") from None
    where = f"model spec item #{index} ({name})"  # a registered name: short, printable
    kwargs = {k: v for k, v in item.items() if k != "type"}
    _check_arguments(layer_class, kwargs, where)

    def why(exc):  # the constructor's message, less a repeated "Linear: "
        text = " ".join(str(exc).split())
        for prefix in (f"{name}: ", f"{layer_class.type_name}: "):
            text = text.removeprefix(prefix)
        return text if isinstance(exc, (NnumbaError, TypeError, ValueError)) else \
            f"{type(exc).__name__}: {text}"

    try:
        return layer_class(**kwargs)
    except TooLargeError as exc:
        raise TooLargeError(f"{where}: {why(exc)}") from None
    except MemoryError as exc:  # numpy tried and failed: the spec asks for too much
        raise TooLargeError(f"{where}: out of memory ({why(exc)})") from None
    except (NnumbaError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError,
            RecursionError) as exc:
        raise SpecError(f"{where}: {why(exc)}") from None


def _check_arguments(layer_class, kwargs: dict, where: str):
    """SpecError naming a missing or unknown argument, and listing those the layer
    takes (the constructor's own TypeError names neither the layer nor the choices)."""
    try:
        signature = inspect.signature(layer_class)
    except (TypeError, ValueError):  # no signature to read: the constructor will say
        return
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        takes = ", ".join(str(p) for p in signature.parameters.values()) or "no arguments"
        raise SpecError(f"{where}: {exc}; it takes {takes}") from None
