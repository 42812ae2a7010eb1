"""``nnumba classify IMAGE --model alexnet --weights FILE``: the lecture's closing demo.

The image is read with Pillow (``pip install "nnumba[images]"``) as viewers show it
(turned by its EXIF orientation, transparent parts over white), resized to the
model's input size and scaled to [0, 1]. For PyTorch weights it is then normalised
as in the lecture, ``0.5 + 0.5 * (img - img.mean()) / img.std()`` (one mean and one
standard deviation over the whole image; the std unbiased, as torch's
``Tensor.std``); a model saved by ``nnumba train`` gets the [0, 1] pixels it was
trained on, as nnumba's image data sets give them (``--normalise`` chooses). The
weights come from a PyTorch state_dict (.safetensors or .npz, see
:mod:`nnumba.torch_import`) or a file nnumba saved.
Labels: one per line, a JSON list or ``{index: name}`` object, or the lecture's
``imagenet1000_clsidx_to_human.txt`` (a Python dict literal, read with
``ast.literal_eval``, which evaluates literals only, never code).
"""
from __future__ import annotations

import ast
import json
import os
import re
import warnings

import numpy as np

from ..errors import (DuplicateKeyError, FileFormatError, ImageError, JSONFileError,
                      NnumbaError, NonFiniteError, ShapeError, WeightsError)
from ..jsonfile import parse_json, read_json, read_text
from ..layers.validation import encodable, printable
from ..paths import model_file


def add_parser(sub):
    p = sub.add_parser("classify", help="classify an image with a saved nnumba model, or a model "
                       "and PyTorch weights",
                       description="Print the top classes of an image with their scores "
                                   "(the model's raw outputs: logits, for a model trained "
                                   "with cross-entropy), as the lecture does with AlexNet.")
    p.add_argument("image", help="an image file Pillow reads (JPEG, PNG, ...), read as viewers "
                                 "show it: turned by its EXIF orientation, transparent parts "
                                 "over white; grey or RGB, for a model of 1 or 3 channels")
    p.add_argument("--model", help="a registered model name, a JSON spec (a .json file, or "
                                   "its text in quotes) or a saved model (.npz); default: the "
                                   "one saved in --weights, else alexnet")
    p.add_argument("--weights", required=True,
                   help="a PyTorch state_dict as .safetensors or .npz (or a nnumba .npz)")
    p.add_argument("--labels", help="class names: one per line, JSON, or the lecture's dict file")
    p.add_argument("--top", type=int, default=15, help="how many classes to print (default 15)")
    p.add_argument("--size", help="resize to H,W (default: the model's input size, else "
                                  "224); 'image': keep the image's own size, as the lecture's "
                                  "AlexNet listing feeds it (a model whose pooling adapts)")
    p.add_argument("--normalise", choices=("lecture", "none"),
                   help="lecture: 0.5 + 0.5 (img - mean) / std over the image, as the "
                        "lecture's AlexNet demo; none: pixels in [0, 1], as nnumba's image "
                        "data sets give them (default: none for a model nnumba saved, "
                        "lecture for PyTorch weights)")
    p.add_argument("--invert", action="store_true",
                   help="use 1 - pixel: for a dark-on-light picture (ink on paper) and a model "
                        "trained on light-on-dark images such as MNIST's")
    p.add_argument("--num-classes", type=int, help="option of the named model (default its own)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise NnumbaError('reading images needs Pillow: pip install "nnumba[images]"') from None
    return Image


def load_image(path, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """(1, C, H, W) float32 in [0, 1], resized bilinearly to ``size`` (H, W; None: its
    own size), of the image as viewers show it: turned by its EXIF orientation,
    transparency over white."""
    Image = _pillow()
    from PIL import ImageOps
    if channels not in (1, 3):
        raise ShapeError(f"the model takes {channels} input channels; images have 1 or 3")
    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO would block
        raise ImageError(f"{path}: not a regular file")
    try:
        with warnings.catch_warnings():
            # Pillow only warns from MAX_IMAGE_PIXELS to twice that; refuse it all.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                # upright, as viewers show it: phones store portrait photos sideways.
                # Corrupt EXIF only warns (UserWarning) and is skipped: say nothing.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    img = ImageOps.exif_transpose(opened)  # a copy: .format is the file's
                size = (img.height, img.width) if size is None else size
                if img.mode in WIDE_MODES:
                    pixels = _wide_pixels(path, img, size, Image, opened.format)
                else:
                    img = _over_white(img, Image).convert("RGB" if channels == 3 else "L")
                    img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                    pixels = np.asarray(img, dtype=np.float32) / 255.0
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: refused as a possible decompression bomb ({exc})") from None
    except OSError as exc:  # missing, unreadable, or not an image Pillow knows
        raise ImageError(f"{path}: not a readable image ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on bad data
        raise ImageError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") \
            from None
    if pixels.ndim == 2:  # one gray plane, for a model of 1 or 3 channels
        pixels = np.repeat(pixels[:, :, None], channels, axis=2)
    pixels = pixels.reshape(size[0], size[1], channels).transpose(2, 0, 1)
    return np.ascontiguousarray(pixels[None])


def _over_white(img, Image):
    """``img`` composited over white where it has transparency (an alpha channel or a
    transparent colour), as viewers show it: convert() drops alpha and keeps the hidden
    pixels' colour, often black, so ink on a transparent background read as all black."""
    if img.mode not in ("RGBA", "LA", "PA", "RGBa") and "transparency" not in img.info:
        return img
    rgba = img.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)


#: Pillow's gray modes wider than 8 bits (16-bit PNG, 32-bit int and float TIFF): its
#: convert("L") / convert("RGB") clips them to 0..255, so most such images came out as
#: one flat white (16-bit) or black (float) plane, and every image got the same classes
WIDE_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")


def _wide_pixels(path, img, size, Image, file_format=None) -> np.ndarray:
    """(H, W) float32 in [0, 1] of a wide gray image, resized as float: 16-bit values
    (and a PGM's "I", which Pillow scales to 0..65535 from its maxval) over 65535, as
    8-bit ones go over 255 (a faint digit stays faint, white stays white); a 32-bit int
    or float image in [0, 1] as it is, else (a range the mode does not say) its own
    range stretched to [0, 1].  ImageError for NaN or infinite pixels (a float TIFF can
    hold them), which would give NaN scores."""
    plane = img.convert("F")  # 32-bit float: exact for 16-bit values
    values = np.asarray(plane, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ImageError(f"{path}: {int((~np.isfinite(values)).sum())} pixel(s) are NaN or "
                         f"infinite")
    low, high = values.min(), values.max()
    if img.mode.startswith("I;16") or (img.mode == "I" and file_format == "PPM"):
        low, high = 0.0, 65535.0
    elif low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    key = img.info.get("transparency")  # a 16-bit PNG's transparent gray (tRNS)
    if isinstance(key, int) and not isinstance(key, bool) and (values == key).any():
        values[values == key] = high  # over white, as _over_white does for 8 bits
        plane = Image.fromarray(values.astype(np.float32), "F")
    resized = np.asarray(plane.resize((size[1], size[0]), Image.Resampling.BILINEAR),
                         dtype=np.float64)
    if high == low:  # a flat image of a range unknown: (x - low) / 0 would be NaN
        return np.full(size, float(np.clip(low, 0, 1)), np.float32)
    return np.clip((resized - low) / (high - low), 0.0, 1.0).astype(np.float32)


def normalise(img: np.ndarray) -> np.ndarray:
    """The lecture's 0.5 + 0.5 * (img - mean) / std, over the whole image."""
    # A flat image has no contrast to scale (its float32 std is a rounding error, not 0).
    if img.max() == img.min():
        return np.full_like(img, 0.5)
    std = img.std(ddof=1)
    return (0.5 + 0.5 * (img - img.mean()) / std).astype(img.dtype)


def _literal(text: str, source: str):
    """A Python literal; a dict naming a key twice is refused (literal_eval keeps the
    last, as json does)."""
    node = ast.parse(text.strip(), mode="eval").body
    if isinstance(node, ast.Dict) and None not in node.keys:
        seen = set()
        for key in map(ast.literal_eval, node.keys):
            if key in seen:
                raise DuplicateKeyError(f"{source}: the key {key!r:.40} appears twice; keep one")
            seen.add(key)
    return ast.literal_eval(node)


def load_labels(path) -> dict[int, str]:
    """{class index: name} from a text, JSON, or Python-literal dict file; a
    FileFormatError naming the file for anything else."""
    source = f"labels file {path}"
    text = read_text(path, "labels file", FileFormatError)
    # a line ends at \n (or \r\n) only: splitlines also ends one at \f or U+2028
    lines = text.replace("\r\n", "\n").split("\n")
    names = [line.strip() for line in lines if line.strip()]
    # one name a line, unless a JSON or literal list/dict starts it ("[background]", a
    # name in brackets without quotes, starts no list: the next line is a name too)
    if not text.lstrip().startswith(("{", "[")) or \
            len(names) > 1 and re.fullmatch(r"[\[{][^\[\]{}\"',:]*[\]}]", names[0]):
        return {i: line.strip() for i, line in enumerate(lines) if line.strip()}
    try:
        data = parse_json(text, source)
    except DuplicateKeyError:
        raise
    except JSONFileError as json_error:
        try:
            data = _literal(text, source)  # literals only: never runs code
        except DuplicateKeyError:
            raise
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            why = str(json_error).removeprefix(f"{source}: ")
            raise FileFormatError(f"{source}: not a JSON or literal list/dict of labels "
                                  f"({why})") from None
    if not isinstance(data, (dict, list, tuple)):
        raise FileFormatError(f"{source}: holds a {type(data).__name__}, not a list or "
                              f"{{index: name}} dict of labels")
    labels = {}
    for key, name in data.items() if isinstance(data, dict) else enumerate(data):
        index = key if type(key) is int else \
            int(key) if isinstance(key, str) and re.fullmatch(r"\s*\d+\s*", key) else -1
        if index in labels:  # "0" and "00"
            raise FileFormatError(f"{source}: names class {index} twice ({key!r:.40})")
        if index < 0 or isinstance(name, bool) or not isinstance(name, (str, int, float)):
            raise FileFormatError(f"{source}: entry {key!r:.40}: {name!r:.40} is not a class "
                                  f"index (an int >= 0) with a name (a string)")
        if not encodable(str(name)):
            raise FileFormatError(f"{source}: entry {key!r:.40}: {name!r:.40} is not "
                                  f"printable text (a lone surrogate)")
        labels[index] = str(name)
    return labels


def _input_shape(args, model, stored=None):
    """(channels, (H, W)): --size, else the named model's input_shape or the image
    shape the weights were saved with (``stored``), else 224 x 224; the channels of
    that shape, else of the model's first layer where it says (Conv2d), else RGB."""
    from ..models.fitting import is_model_name
    from ..registry import get_model
    named = model_file(args.model) is None and is_model_name(args.model)  # not JSON text
    # (C, H, W): see run
    shape = get_model(args.model).input_shape_for(args.model) if named else stored
    size = None
    if args.size and args.size != "image":
        try:
            size = tuple(int(v) for v in args.size.split(","))
            size = size * 2 if len(size) == 1 else size
            if len(size) != 2 or min(size) < 1:
                raise ValueError
        except ValueError:
            raise ValueError(f"--size must be H,W or N (positive ints) or 'image', got "
                             f"{args.size!r}") from None
    channels = shape[0] if shape else getattr(model.layers[0], "in_channels", None)
    if not (shape or channels):  # a model that flattens the image, saved without its shape
        shape = _flat_shape(model, size)
        channels = shape[0] if shape else 3
    if args.size == "image":  # the image's own size, as the lecture's listing feeds it
        return channels, None
    if size:
        hw, source = size, f"--size {args.size}"
    else:
        hw = tuple(shape[1:]) if shape else (224, 224)
        source = f"the image size stored in {args.weights}" if shape and not named else \
            f"the image size of {args.model}"
    limit = _pillow().MAX_IMAGE_PIXELS
    if limit and hw[0] * hw[1] > limit:  # before Pillow resizes to it
        raise ValueError(f"{source} is {hw[0] * hw[1]:,} pixels, more than Pillow's limit "
                         f"of {limit:,}")
    return channels, hw


def _flat_shape(model, size):
    """(C, H, W) of a model that flattens its input (Flatten, then a Linear): its
    Linear's inputs as 1 or 3 channels of a square image, or of ``size`` (H, W)
    where given (784: 1 x 28 x 28); None where they do not divide so."""
    width = next((layer.in_features for layer in model.layers
                  if hasattr(layer, "in_features")), None)
    h, w = size or (None, None)
    for c in (1, 3) if width else ():
        side = h or round((width / c) ** 0.5)
        if width == c * side * (w or side):
            return c, side, w or side
    return None


def _build(args):
    import nnumba
    from ..cli import naming
    from ..models.fitting import is_model_name
    if kind := model_file(args.model):
        if args.num_classes is not None:
            raise ValueError("--num-classes applies to named models only")
        if kind == ".npz":  # a saved model: its layers (--weights below)
            from ..io import rebuild
            return rebuild(args.model, seed=0)
        spec = read_json(args.model, "model spec")  # names the file itself
        try:  # from_spec, not build: a file holding "alexnet" is no spec
            return nnumba.Sequential.from_spec(spec, seed=0)
        except (NnumbaError, TypeError, ValueError) as exc:  # the error names the file too
            raise naming(exc, f"model spec {args.model}") from None
    if not is_model_name(args.model):  # a spec's JSON text, as nnumba train takes
        if args.num_classes is not None:
            raise ValueError("--num-classes applies to named models only")
        return nnumba.Sequential.from_spec(args.model, seed=0)
    # the model's own name for it: alexnet's num_classes, lenet's and mlp's classes
    known = nnumba.get_model(args.model).options()
    option = "num_classes" if "num_classes" in known or "classes" not in known else "classes"
    options = {} if args.num_classes is None else {option: args.num_classes}
    try:
        return nnumba.build(args.model, seed=0, **options)
    except TypeError as exc:
        raise ValueError(f"model {args.model!r}: {exc}") from None


def _stored(weights) -> dict:
    """What an nnumba weights file was saved with (io.stored_info), else Nones."""
    from ..io import stored_info
    from ..npz import is_nnumba_npz
    return {**stored_info(weights), "saved": True} if is_nnumba_npz(weights) else \
        {"classes": None, "input_shape": None, "saved": False}


def classify(model, x, top: int):
    """[(class index, score)] of the ``top`` highest scores for the one image in ``x``."""
    scores = model.predict(x)[0]
    if not np.isfinite(scores).all():  # a ranking of NaNs would be silent garbage
        raise NonFiniteError("the model's scores hold NaN or infinity")
    order = np.argsort(-scores, kind="stable")[:top]
    return [(int(i), float(scores[i])) for i in order]


def run(args):
    from ..torch_import import load_torch_weights
    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    # '' read as '.': "Is a directory"; as an image: ": not a readable image"
    for what, value in (("--weights", args.weights), ("the image", args.image),
                        ("--labels", args.labels), ("--model", args.model)):
        if value is not None and not value.strip():
            raise ValueError(f"{what} needs a file name{' or a model name' * (what == '--model')}, "
                             f"got {value!r}")
    _pillow()  # before the weights, which take a while to read
    stored = _stored(args.weights)
    if args.model is None:  # nnumba's own weights name their model
        args.model = args.weights if stored["saved"] else "alexnet"
    labels = load_labels(args.labels) if args.labels else dict(enumerate(stored["classes"] or []))
    shape = stored["input_shape"]
    if shape is not None and len(shape) != 3:  # trained on a table or a sequence
        raise ShapeError(f"{args.weights}: its model takes inputs of shape {tuple(shape)}, not "
                         f"images (channels, height, width); classify takes image models")
    model = load_torch_weights(_build(args), args.weights)  # finite weights only
    channels, size = _input_shape(args, model, shape)
    pixels = load_image(args.image, channels, size)
    if args.invert:
        pixels = 1 - pixels
    # nnumba's own models were trained on [0, 1] pixels: the lecture's scaling moves the
    # background of a digit from 0 to ~0.3 (an MNIST MLP: 91 % -> 83 % on its test set)
    lecture = args.normalise == "lecture" or (args.normalise is None and not stored["saved"])
    x = (normalise(pixels) if lecture else pixels).astype(model.dtype, copy=False)  # float64
    seen = list(x.shape[2:])  # the size the model sees, for --json
    if hasattr(model.layers[0], "in_features"):  # a Linear first, no Flatten: flat pixels
        x = x.reshape(len(x), -1)
    try:
        ranked = classify(model, x, args.top)
    except NonFiniteError as exc:  # finite weights, yet too large: they overflow
        raise NonFiniteError(f"{args.image} with the weights of {args.weights}: {exc}") \
            from None
    except ShapeError as exc:  # the size guessed (224 x 224) or given does not fit
        raise ShapeError(f"{exc}; give the image size the model takes with --size H,W") \
            from None
    outputs = model.output_shape(x.shape[1:])[-1]
    signs = outputs == 1  # one output: its sign chooses class 0 or 1
    if signs and labels and sorted(labels) != [0, 1]:
        where, error = (f"--labels {args.labels}", ValueError) if args.labels else \
            (f"{args.weights}: its stored class names", WeightsError)
        raise error(f"{where}: the model has one output, whose sign chooses between "
                    f"classes 0 and 1; name both, got classes "
                    f"{', '.join(map(str, sorted(labels)))}")
    if labels and not args.labels and len(labels) != outputs and not signs:
        raise WeightsError(f"{args.weights}: its {len(labels)} stored class names do not "
                           f"match the model's {outputs} outputs; give --labels")
    if args.labels and not signs and max(labels, default=-1) >= outputs:  # another model's?
        raise ValueError(f"--labels {args.labels} names class {max(labels)}, but the model "
                         + (f"has {outputs} outputs (classes 0 to {outputs - 1})" if outputs > 1
                            else "has one output, whose sign chooses between classes 0 and 1"))
    chosen = [(int(s >= 0) if signs else i, s) for i, s in ranked]
    top = [{"rank": k + 1, "index": i, "score": s, "label": labels.get(i, f"class {i}")}
           for k, (i, s) in enumerate(chosen)]
    if args.json:  # (and the size the model saw)
        print(json.dumps({"image": str(args.image), "size": seen, "top": top}))
    else:
        for t in top:  # a name's control characters escaped: one line per class
            print(f"#{t['rank']} ({t['score']:.2f}) {printable(t['label'])}")
    return 0
