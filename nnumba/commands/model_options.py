"""``--model-option KEY=VALUE``, shared by the commands that build a named model."""
from ..errors import DuplicateKeyError
from ..jsonfile import loads


def add_argument(parser):
    parser.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of a named model's factory, e.g. "
                             "--model-option classes=5 (VALUE is read as JSON, where Python's "
                             "True, False and None are true, false and null; else as text); "
                             "repeat for several")


_PYTHON = {"True": "true", "False": "false", "None": "null"}  # what a Python user types


def parse(items) -> dict:
    """KEY=VALUE pairs; VALUE as JSON (5, [128, 64], true) or Python's True, False
    and None, else as text."""
    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--model-option takes KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = loads(_PYTHON.get(text.strip(), text))
        except DuplicateKeyError as exc:  # JSON, but json alone would keep the last
            raise ValueError(f"--model-option {key.strip()}: {exc}") from None
        except (ValueError, RecursionError):  # [[[...]]] nested too deep for json
            options[key.strip()] = text
    return options
