"""``nnumba summary MODEL``: per layer, the output shape, parameters, memory and FLOPs,
computed from the spec without building the model (see :mod:`nnumba.summary`).

    nnumba summary image-linear      # the lecture's 3.87e+10 parameters, ≈ 150 GB
    nnumba summary alexnet --batch 16
    nnumba summary lenet --input-shape 1,28,28
"""
import json
from pathlib import Path


def add_parser(sub):
    p = sub.add_parser("summary", help="per-layer shapes, parameters, memory and FLOPs",
                       description="Size a model from its spec without allocating it.")
    p.add_argument("model", help="a registered model name or a JSON spec file")
    p.add_argument("--input-shape", help="per-sample input shape, e.g. 3,224,224 "
                                         "(default: the model's own, where it has one)")
    p.add_argument("--batch", type=int, default=1, help="samples per batch (default 1)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def _shape(text):
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--input-shape must be comma-separated ints, got {text!r}") from None
    return shape


def run(args):
    from ..jsonfile import read_json
    from ..summary import summarize
    shape = None if args.input_shape is None else _shape(args.input_shape)
    model, name = args.model, None
    if model.endswith(".json"):  # read here: a bad file gets a message naming it
        model, name = read_json(args.model, "model spec"), Path(args.model).name
    result = summarize(model, input_shape=shape, batch=args.batch, dtype=args.dtype, name=name)
    print(json.dumps(result.to_dict()) if args.json else result.format())
    return 0
