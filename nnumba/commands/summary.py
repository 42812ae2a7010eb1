"""``nnumba summary MODEL``: per layer, the output shape, parameters, memory and FLOPs,
computed from the spec without building the model (see :mod:`nnumba.summary`).

    nnumba summary image-linear      # the lecture's 3.87e+10 parameters, ≈ 150 GB
    nnumba summary alexnet --batch 16
    nnumba summary lenet --input-shape 1,28,28
    nnumba summary mlp --model-option hidden=[512,128]
    nnumba summary trained.npz       # a saved model (nnumba train --save)
"""
import inspect
import json
import os
from pathlib import Path

from ..layers.validation import printable
from ..paths import model_file
from . import model_options


def add_parser(sub):
    p = sub.add_parser("summary", help="per-layer shapes, parameters, memory and FLOPs",
                       description="Size a model from its spec without allocating it.")
    p.add_argument("model", help="a registered model name, a JSON spec (a .json file, or "
                                 "its text in quotes) or a saved model (.npz, as nnumba "
                                 "train --save writes)")
    p.add_argument("--input-shape", help="per-sample input shape, e.g. 3,224,224 "
                                         "(default: the model's own, where it has one)")
    model_options.add_argument(p)
    p.add_argument("--batch", type=int, default=1, help="samples per batch (default 1)")
    p.add_argument("--dtype", choices=("float32", "float64"),
                   help="the parameters' dtype (default: a saved model's own, else "
                        "float32)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def _shape(text):
    try:
        shape = tuple(int(v) for v in text.split(","))
        if min(shape) < 1:
            raise ValueError
    except ValueError:
        raise ValueError(f"--input-shape must be comma-separated ints >= 1, got {text!r}") \
            from None
    return shape


def run(args):
    from ..cli import naming
    from ..errors import NnumbaError
    from ..summary import summarize
    shape = None if args.input_shape is None else _shape(args.input_shape)
    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1, got {args.batch}")
    options = model_options.parse(args.model_option)
    kind = model_file(args.model)
    if options and kind:
        raise ValueError(f"--model-option applies to named models, not to the file "
                         f"{args.model}")
    own = sorted(set(options) & set(inspect.signature(summarize).parameters))
    if own:  # summarize's own parameters: a TypeError there
        raise ValueError(f"--model-option {own[0]}: summary cannot pass a model option of "
                         f"that name (use --batch, --dtype or --input-shape for its own)")
    _not_a_file(args.model, kind)
    try:  # summarize reads a .json spec file or a saved model itself
        name = args.model if kind else None  # as the user wrote it
        result = summarize(args.model, shape, args.batch, args.dtype, name, **options)
    except (NnumbaError, ValueError) as exc:
        if not kind or args.model in str(exc) or \
                str(Path(args.model)) in str(exc):  # ("./m.json" is named "m.json")
            raise  # a named model's error, or one that names the file already
        what = "model spec" if kind == ".json" else "saved model"
        more = ""
        if kind == ".npz" and "came from" not in str(exc):  # what to install
            from ..io import plugin_origins
            more = plugin_origins(args.model)
        raise naming(exc, f"{what} {args.model}", more) from None  # what it holds, too
    print(json.dumps(result.to_dict()) if args.json else printable(result.format(), lines=True))
    return 0


def _not_a_file(model: str, kind):
    """A path that exists but is no spec or saved model (a folder, /dev/null) is said
    to be one: "unknown model '/tmp'" listed the model names instead."""
    from ..registry import get_registry
    if kind or not os.path.exists(model) or \
            model in {name for name, _ in get_registry().all_entries("model")}:
        return
    kind = "a folder" if os.path.isdir(model) else "a file"
    raise ValueError(f"{model} is {kind}, not a model: give a registered model name, a JSON "
                     f"spec (.json) or a saved model (.npz)")
