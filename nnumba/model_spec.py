"""What a model spec must look like before any layer is built from it."""
from .errors import SpecError
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
