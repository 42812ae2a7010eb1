"""Save and load weights as .npz, never with pickle: one array per parameter ("0.weight",
"0.bias", ...) and the model spec as JSON text, so that :func:`load_model` rebuilds the
model alone (naming the plugin distributions its layers came from where one is missing)."""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

import numpy as np

from .atomic_file import probe, write_whole
from .errors import (DTypeError, MissingFileError, NnumbaError, NonFiniteError, SaveError,
                     TooLargeError, WeightsError)
from .jsonfile import MAX_TEXT_BYTES, parse_json
from .layers.parameters import shapes_only
from .layers.validation import encodable, show
from .model import Sequential
from .model_spec import build_layer
from .npz import check_npz_memory, npz_headers
from .paths import regular_file, user_path
from .registry_names import came_from, recorded_layers, unfound

__all__ = ["save", "load_model", "load_weights", "stored_info", "stored_spec", "rebuild",
           "check_save_path"]
_SPEC_KEY = "__nnumba_spec__"
#: SGD's momentum buffer, flat, where the file keeps the training (nnumba.checkpoint)
VELOCITY = "__nnumba_velocity__"
FORMAT = 1  # the layout of the weights files save writes (the stored meta says which)


def check_save_path(path, create: bool = True) -> Path:
    """The file :func:`save` will write for ``path`` (".npz" added where missing),
    checked before anything long runs: SaveError when it cannot be written there, or
    when it would replace a file that is not nnumba weights.

    Missing folders are created, as save would (without ``create``, as a command checks
    before a run that may yet be refused, they are removed again); a temporary file is
    made and removed in the destination folder, which tests permissions, read-only file
    systems and over-long names in one go."""
    if path is None or not str(path).strip():
        raise SaveError("no file name given to save the weights to")
    if not isinstance(path, (str, os.PathLike)):
        raise SaveError(f"the file to save the weights to must be a path, got {show(path)}")
    user_path(path, "file to save the weights to", SaveError)  # a NUL byte, ...
    text = os.fspath(path)
    folder = f"{text}: names a folder; give a file name such as "
    if text.endswith(("/", os.sep)):
        raise SaveError(folder + f"{text}model.npz")
    given = Path(text).expanduser()
    if given.name in ("", ".", ".."):
        raise SaveError(folder + "model.npz")
    path = given if given.suffix.lower() == ".npz" else given.with_name(given.name + ".npz")
    try:
        target = _target(path)  # the checks below are of the file a link points to
        if given.is_dir() or target.is_dir():
            raise SaveError(folder + f"{given / 'model.npz'}")
        if target.exists() and not target.is_file():
            raise SaveError(f"{path}: exists and is not a regular file; refusing to replace it")
        if target.is_file() and not os.access(target, os.W_OK):  # root may: its mode is kept
            raise SaveError(f"{path}: is write-protected; refusing to replace it (make it "
                            f"writable, or save under another name)")
        if target.is_file() and target.stat().st_size and not _holds_weights(target):
            # a user's data set (--save naming the --data file) would be lost
            raise SaveError(f"{path}: exists and is not an nnumba weights file; refusing to "
                            f"replace it (remove it, or save under another name)")
        lost = next((p for p in path.absolute().parents if p.is_symlink() and not p.exists()),
                    None)
        if lost is not None:
            raise SaveError(f"cannot save weights to {path}: {lost} is a symbolic link to a "
                            f"folder that does not exist")
        existing = next(p for p in path.absolute().parents if p.exists())
        if not existing.is_dir():
            raise SaveError(f"cannot save weights to {path}: {existing} is a file, not a folder")
        parent = path.parent.absolute()  # ("new/.." names new's parent: not one to make)
        made = [p for p in (parent, *parent.parents)
                if p.name not in (".", "..") and not p.exists()]  # the deepest first
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            probe(target)
        finally:
            if not create:  # save makes them: a run refused before then leaves none behind
                for folder in made:
                    folder.rmdir()
    except SaveError:
        raise
    except OSError as exc:
        raise SaveError(f"cannot save weights to {path}: {exc.strerror or exc}") from None
    return path


def _target(path: Path) -> Path:
    """The file a save to ``path`` writes: where a symbolic link points (the link stays)."""
    if not path.is_symlink():
        return path
    if os.readlink(path).endswith(("/", "/.", os.sep)):  # resolve() would drop the slash
        raise SaveError(f"{path}: a symbolic link to {os.readlink(path)!r}, a folder's name; "
                        f"refusing to write there")
    try:
        target = path.resolve()
    except (RuntimeError, OSError):  # a loop of links
        raise SaveError(f"{path}: a symbolic link that leads back to itself") from None
    if not target.parent.is_dir():
        raise SaveError(f"{path}: a symbolic link to {target}, whose folder does not exist")
    return target


def save(model, path, classes=None, input_shape=None, training=None) -> Path:
    """Write ``model``'s weights and spec to ``path`` (.npz), atomically: the file
    appears complete or not at all. Returns the path written (see check_save_path).

    What the weights alone do not say, read back by :func:`nnumba.io.stored_info`
    (``nnumba classify`` uses both): ``classes``, the class names, one per output (output i
    scores ``classes[i]``), or two for one output whose sign chooses (negative
    first); ``input_shape``, the shape of one sample it takes; ``training``, the
    trainer of ``model``, to train on from its state (:mod:`nnumba.checkpoint`)."""
    _check_model("save", model)
    spec = model.spec()
    meta = {"spec": spec, "dtype": model.dtype.name, "format": FORMAT,
            **_info(classes, input_shape), "distributions": _distributions(spec),
            "unregistered": unfound(model, spec)}
    # ShapeError where the model cannot take the input shape
    outputs = model.output_shape(tuple(meta["input_shape"])) if "input_shape" in meta \
        else _output_shape(model)
    if "classes" in meta and outputs is not None and outputs != (len(meta["classes"]),) \
            and not (outputs == (1,) and len(meta["classes"]) == 2):  # -1 and +1 by sign
        raise SaveError(f"save: {len(meta['classes'])} classes for a model whose output "
                        f"per sample has shape {outputs}")
    arrays = {name: p.value for name, p in model.params()}
    if training is not None:
        if not callable(getattr(training, "state", None)):
            raise SaveError(f"save: training= takes the trainer of the model saved (an "
                            f"nnumba.SGDTrainer or GDTrainer), got {show(training)}")
        meta["training"], velocity = training.state(model)
        arrays.update({} if velocity is None else {VELOCITY: velocity})  # None: no step yet
    bad = next((n for n, a in arrays.items() if not np.isfinite(a).all()), None)
    if bad is not None:  # load_model refuses such a file: keep the old one
        raise NonFiniteError(f"save: {bad} holds NaN or infinity (a diverged training leaves "
                             f"them so): nothing written to {path}")
    path = check_save_path(path)  # (it makes the missing folders)
    arrays[_SPEC_KEY] = np.array(json.dumps(meta))
    try:
        write_whole(_target(path), lambda f: np.savez(f, **arrays))
    except OSError as exc:
        raise SaveError(f"cannot save weights to {path}: {exc.strerror or exc}") from None
    return path


# ---- loading -------------------------------------------------------------------------

def _holds_weights(path) -> bool:
    try:
        return _SPEC_KEY in npz_headers(path)
    except ValueError:
        return False


def _check_headers(path: Path, headers: dict, expected: dict | None):
    """Before any array is read: check_npz_memory, and WeightsError where an array
    has another shape than ``expected``'s."""
    check_npz_memory(path, headers)
    spec = headers.get(_SPEC_KEY)  # read whole, twice, by a load: bounded as a spec file is
    if spec is not None and spec[1].kind == "U" and spec[1].itemsize // 4 > MAX_TEXT_BYTES:
        raise WeightsError(f"{path}: its stored model spec declares {spec[1].itemsize // 4:,} "
                           f"characters, more than a spec file may hold ({MAX_TEXT_BYTES:,})")
    if expected is None or set(headers) - {_SPEC_KEY, VELOCITY} != set(expected):
        return  # names missing or extra: load_weights says which, once it has read them
    for name, want in expected.items():
        if headers[name][0] != tuple(want):
            raise WeightsError(f"{path} does not fit this model: {name} has shape "
                               f"{headers[name][0]} in the file, {tuple(want)} in the model")


def read_npz(path, what: str, expected: dict | None = None, only=None) -> dict:
    """Every array of the .npz (a zip) at ``path`` (those named in ``only``, where
    given), never unpickled, once their headers passed _check_headers; else
    WeightsError naming the file as a ``what``."""
    if not zipfile.is_zipfile(path):  # numpy would take it for a pickle, and say so
        raise WeightsError(f"{path}: not a readable {what} (not a zip archive, as an .npz "
                           f"file is)")
    wanted = lambda name: only is None or name in only  # noqa: E731
    try:
        headers = npz_headers(path)
    except ValueError as exc:  # a member np.load would read whole, as bytes, at any size
        raise WeightsError(f"{path}: not a readable {what} ({exc})") from None
    _check_headers(path, {k: v for k, v in headers.items() if wanted(k)}, expected)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if wanted(k)}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, MemoryError,
            RuntimeError) as exc:
        # BadZipFile: a bad CRC or a truncated file; ValueError: a bad member or pickled
        # data; RuntimeError: an encrypted member
        if "allow_pickle" in str(exc):
            raise WeightsError(f"{path} holds pickled (object) arrays; nnumba never unpickles. "
                               f"Save plain numeric arrays (v.numpy() per torch tensor)") from None
        raise WeightsError(f"{path}: not a readable {what} ({exc})") from None
    return arrays


def _read(path, expected: dict | None = None, spec_only=False) -> tuple[dict, dict]:
    """(meta, arrays) of a nnumba weights file, every failure a WeightsError naming it;
    ``expected`` ({name: shape}) refuses a misfit from the headers, before the data;
    ``spec_only`` reads no weights (arrays is then {})."""
    if not isinstance(path, (str, os.PathLike)):
        raise WeightsError(f"a weights file is a path, got {show(path)}")
    path = regular_file(user_path(path, "weights file", WeightsError), "weights file",
                        WeightsError)
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such weights file") from None
    except OSError as exc:
        raise WeightsError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if head != b"PK":  # else numpy takes any other bytes for a pickle
        raise WeightsError(f"{path}: not a readable nnumba weights file (not a .npz zip "
                           f"archive, as nnumba.save writes)")
    arrays = read_npz(path, "nnumba weights file", expected,
                      {_SPEC_KEY} if spec_only else None)
    spec = arrays.pop(_SPEC_KEY, None)
    if spec is None:
        raise WeightsError(f"{path}: no model spec inside; was it written by nnumba.io.save?")
    if spec.shape != () or spec.dtype.kind != "U":
        raise WeightsError(f"{path}: the stored model spec is not a JSON string")
    try:
        meta = parse_json(str(spec), f"{path}: stored model spec")
    except ValueError as exc:
        raise WeightsError(str(exc)) from None
    if not isinstance(meta, dict) or "spec" not in meta \
            or meta.get("dtype") not in ("float32", "float64"):
        raise WeightsError(f"{path}: the stored model spec lacks its 'spec' or a float32/"
                           f"float64 'dtype'; was it written by nnumba.io.save?")
    fmt = meta.get("format", FORMAT)
    if type(fmt) is not int:  # true == 1 in Python, but it is no format number
        raise WeightsError(f"{path}: the stored weights format {fmt!r} is not a format "
                           f"number; was it written by nnumba.io.save?")
    if fmt != FORMAT:  # a later nnumba's layout, read as this one's
        raise WeightsError(f"{path}: written in weights format {meta['format']!r}; this "
                           f"nnumba reads format {FORMAT}: upgrade nnumba to load it")
    return meta, arrays


def _check_model(owner: str, model):
    """DTypeError (a TypeError) unless ``model`` is a Sequential (a layer's params() is
    a dict: save would fail on it with a bare ValueError)."""
    if not isinstance(model, Sequential):  # a fitted estimator: its network is .model_
        net = isinstance(getattr(model, "model_", None), Sequential) * "; its fitted network, .model_"
        raise DTypeError(f"{owner}: expected a model (nnumba.Sequential), got {show(model)}{net}")


def cast_checked(array, dtype, where: str, note: str = "") -> np.ndarray:
    """``array`` as ``dtype`` for the parameter ``where`` ("FILE: parameter NAME"):
    NonFiniteError where it holds NaN or infinity (such a model answers only NaN),
    WeightsError where it exceeds ``dtype``'s range; ``note`` follows the name."""
    if not np.isfinite(array).all():
        raise NonFiniteError(f"{where} holds NaN or infinity{note}")
    with np.errstate(over="ignore"):
        cast = array.astype(dtype, copy=False)
    if not np.isfinite(cast).all():  # float64 weights past float32's range
        raise WeightsError(f"{where}{note} holds values beyond the model's {dtype.name} range "
                           f"(at most {float(np.finfo(dtype).max):.4g})")
    return cast


def load_weights(model, path):
    """Copy the weights in ``path`` into ``model``; the names and shapes must match,
    and the values be finite. The model is left untouched when they don't."""
    _check_model("load_weights", model)
    _, arrays = _read(path, {name: p.value.shape for name, p in model.params()})
    arrays.pop(VELOCITY, None)  # the training's, not a parameter
    path = Path(path)
    params = dict(model.params())
    missing = sorted(set(params) - set(arrays))
    extra = sorted(set(arrays) - set(params))
    if missing or extra:
        raise WeightsError(f"{path} does not fit this model: missing {missing or 'nothing'}, "
                           f"unexpected {extra or 'nothing'}")
    for name, p in params.items():  # (_read checked the shapes, from the headers)
        if arrays[name].dtype.kind not in "fiu":
            raise WeightsError(f"{path}: {name} holds {arrays[name].dtype} values, not numbers")
        arrays[name] = cast_checked(arrays[name], p.value.dtype, f"{path}: parameter {name}")
    for name, p in params.items():
        p.value[...] = arrays[name]
    # what the last forward kept belongs to the old weights (as after an optimizer step)
    model._no_backward = ("load_weights changed the weights since the last forward(): run "
                          "forward() again before backward()")
    return model


def stored_spec(path) -> tuple[list, str]:
    """(spec, dtype) of the model saved in ``path``, its weights left unread."""
    meta, _ = _read(path, spec_only=True)
    return _spec_as_saved(meta), meta["dtype"]


def plugin_origins(path) -> str:
    """"; its layers came from DIST VERSION (Layer), ..." as ``path`` records its
    plugin layers ("" where none), for an error that should say what to install."""
    meta, _ = _read(path, spec_only=True)
    return came_from(meta.get("distributions"))


def _spec_as_saved(meta) -> list:
    """The stored spec, its plugin layers resolved to the distributions that gave
    them at save time (another plugin may claim their names since)."""
    spec, dists = meta["spec"], meta.get("distributions")
    return recorded_layers(spec, dists) if isinstance(spec, list) and isinstance(dists, dict) \
        else spec


def _distributions(spec) -> dict:
    """{layer type: the distribution that registered it} for the plugins' layers of
    a model's ``spec``: a load without that plugin can then say what to install."""
    from .registry import BUILTIN_DISTRIBUTION, RUNTIME_DISTRIBUTION, get_registry
    found = {}
    for item in spec:
        with suppress(NnumbaError):  # an unregistered layer: no distribution to name
            dist = get_registry().entry("layer", item["type"]).distribution
            if dist not in (BUILTIN_DISTRIBUTION, RUNTIME_DISTRIBUTION):
                found[item["type"]] = dist
    return found


def _output_shape(model) -> tuple | None:
    """A sample's output shape where the last layer with ``out_features`` (a Linear)
    fixes it whatever the input, as the layers after it pass it on; else None."""
    for i, layer in reversed(list(enumerate(model.layers))):
        width = getattr(layer, "out_features", None)
        if isinstance(width, int):
            shape = (width,)
            try:
                for later in model.layers[i + 1:]:
                    shape = tuple(later.output_shape(shape))
            except (ValueError, TypeError):  # a later layer that takes no flat sample
                return None
            return shape
    return None


def _info(classes, input_shape, path=None) -> dict:
    """{"classes": distinct non-empty strings (numbers become their text),
    "input_shape": a list of ints}, each only where given; SaveError (WeightsError
    when read from ``path``) where one is malformed."""
    error, where = (SaveError, "save: ") if path is None else (WeightsError, f"{path}: stored ")
    info = {}
    if input_shape is not None:
        if isinstance(input_shape, (str, bytes, set, frozenset, Mapping)) or not hasattr(
                input_shape, "__len__") or not all(
                    isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1
                    for d in input_shape):  # (): one number a sample, an id say
            raise error(f"{where}input_shape must be a tuple of sizes >= 1 (empty for one "
                        f"number a sample), got {show(input_shape)}")
        info["input_shape"] = [int(d) for d in input_shape]
    if classes is None:
        return info
    if isinstance(classes, Mapping):
        classes = _by_index(classes)
    if isinstance(classes, (str, bytes, set, frozenset, Mapping)) or not hasattr(
            classes, "__len__") or getattr(classes, "ndim", 1) != 1:
        why = " (a set has no order: which output is which?)" \
            if isinstance(classes, (set, frozenset)) else \
            " (a mapping's keys must be the output indices 0 to n-1)" \
            if isinstance(classes, Mapping) else ""
        raise error(f"{where}classes must be a list of class names, output 0's first, got "
                    f"{show(classes)}{why}")
    names = []
    for name in classes:
        if isinstance(name, (np.generic, int, float)) and not isinstance(name, (bool, np.bool_)):
            name = str(name.item() if isinstance(name, np.generic) else name)
        if not isinstance(name, str) or not name.strip() or not encodable(name):
            raise error(f"{where}classes must be non-empty strings (or numbers) of "
                        f"characters text can hold, got {show(name)}")
        names.append(name)
    if len(set(names)) != len(names):
        raise error(f"{where}classes name a class twice: {show(names)}")
    return {**info, "classes": names}


def _by_index(mapping: Mapping):
    """``{index: name}`` (as ``classify --labels`` reads it; JSON's keys are text) as
    the list of names in output order; the mapping itself where its keys are not the
    indices 0 to n-1."""
    def index(key):
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return int(key)
        return int(key) if isinstance(key, str) and key.isdecimal() else None
    order = {index(key): key for key in mapping}
    if sorted(order, key=lambda i: -1 if i is None else i) != list(range(len(mapping))):
        return mapping
    return [mapping[order[i]] for i in range(len(mapping))]


def stored_info(path) -> dict:
    """What ``path`` was saved with besides the weights (see :func:`save`):
    ``{"classes": [names] or None, "input_shape": tuple or None}``."""
    meta, _ = _read(path, spec_only=True)
    info = _info(meta.get("classes"), meta.get("input_shape"), path)
    shape = info.get("input_shape")
    return {"classes": info.get("classes"), "input_shape": None if shape is None else tuple(shape)}


def load_model(path):
    """Rebuild the model saved in ``path`` (its layers must be registered) with its weights,
    the file's arrays compared with its spec first on stand-ins that hold no memory (a
    few kB declaring a 20000 x 20000 layer had it built, 15 GB, before it was refused)."""
    meta, _ = _read(path, spec_only=True)
    def shapes(spec):  # noqa: E306
        with shapes_only():
            layers = [build_layer(item, i) for i, item in enumerate(Sequential.check_spec(spec))]
        return {f"{i}.{name}": p.value.shape for i, layer in enumerate(layers)
                for name, p in layer.params().items()}
    try:
        headers = npz_headers(path)
    except ValueError as exc:
        raise WeightsError(f"{path}: not a readable nnumba weights file ({exc})") from None
    _check_headers(path, headers, _build(path, meta, shapes))
    return load_weights(_build(path, meta, _fresh(meta)), path)


def rebuild(path, seed=None):
    """The model saved in ``path``, freshly initialised (its weights are not read)."""
    meta, _ = _read(path, spec_only=True)
    return _build(path, meta, _fresh(meta, seed))


def _fresh(meta, seed=None):
    return lambda spec: Sequential.from_spec(spec, seed=seed).astype(meta["dtype"])


def _build(path, meta, make):
    """``make(spec)`` of the stored spec, its failures a WeightsError naming the file."""
    missing = meta.get("unregistered")
    if isinstance(missing, dict) and missing:  # its spec would build another class, or none
        index, cls = next(iter(missing.items()))
        raise WeightsError(f"{path}: layer #{index} was {str(cls)[:200]}, a class no plugin "
                           f"registers: register it (nnumba.register_plugin) to load the "
                           f"model, or build it in code and use nnumba.load_weights")
    try:
        return make(_spec_as_saved(meta))
    except TooLargeError as exc:  # a fine file, maybe, for a machine with more memory
        raise TooLargeError(f"{path}: cannot rebuild the stored model: {exc}") from None
    except (NnumbaError, ValueError, TypeError) as exc:
        hint = came_from(meta.get("distributions"))
        raise WeightsError(f"{path}: cannot rebuild the stored model: "
                           f"{str(exc).rstrip('.') if hint else exc}{hint}") from None
