"""Import a PyTorch ``state_dict`` into a Sequential, by layer order and shape, without
PyTorch and without ever unpickling.

Accepted: ``.safetensors`` (needs ``pip install "nnumba[safetensors]"``) and ``.npz``
written with ``np.savez(path, **{k: v.numpy() for k, v in state_dict.items()})``, both
read by pickle-free loaders. Torch's own ``.pt``/``.pth`` files are pickles, which can
run code when loaded: they are refused with the two lines that convert them.

The i-th tensor goes to the i-th nnumba parameter (``model.params()`` order: layer by
layer, weight before bias); every shape must match exactly.  Tensors named exactly as
the model's parameters (``0.weight``, ``0.bias``, ``2.weight``...) go by name, in
whatever order they come.  An .npz keeps the state_dict's order, as a mapping does,
unless its names are sorted where module order is not (safetensors' own loaders sort
them): that order is rebuilt as below.  A safetensors file stores its tensors sorted
by name, which loses it ("classifier" < "features", "10" < "2"), so the order is
rebuilt from the names:
numeric parts (Sequential indices) sort as numbers, and the order of named sibling
modules, and of a module's own tensors where they are more than a weight and a bias,
is the one under which every tensor fits, if exactly one does.  A tensor fits a
parameter of its shape, but never another parameter of that layer named as it is.
"""
from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .errors import MissingFileError, WeightsError
from .io import _check_model, cast_checked, load_weights, read_npz
from .npz import is_nnumba_npz, zip_members
from .layers.validation import show
from .paths import user_path

PICKLE_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".tar"}

_MAX_ORDERS = 5040  # named-sibling permutations tried for a safetensors file


def _unused(path: Path) -> Path:
    """``path``, or a sibling name no file has yet: the hint's command would replace it."""
    found, n = path, 1
    while found.exists():
        found, n = path.with_name(f"{path.stem}-{n}{path.suffix}"), n + 1
    return found


def _convert_hint(path: Path) -> str:
    stem = path.with_suffix("")
    return (f"{path} is a PyTorch pickle file; nnumba never unpickles (loading a pickle can "
            f"run arbitrary code). Convert the state_dict once with torch, to safetensors:\n"
            f"    import torch, safetensors.torch\n"
            f"    safetensors.torch.save_file(torch.load('{path}', weights_only=True), "
            f"'{_unused(Path(f'{stem}.safetensors'))}')\n"
            f"or to .npz:\n"
            f"    import torch, numpy as np\n"
            f"    np.savez('{_unused(Path(f'{stem}.npz'))}', **{{k: v.numpy() for k, v in "
            f"torch.load('{path}', weights_only=True).items()}})")


def read_state_dict(path) -> tuple[dict[str, np.ndarray], bool]:
    """``(tensors, ordered)``: the file's arrays by name; ``ordered`` is False when the
    file does not keep the state_dict's order (safetensors)."""
    path = user_path(path, "weights file", WeightsError)
    try:
        found = path.exists()
    except OSError as exc:  # a name too long, a folder it may not search
        raise WeightsError(f"weights file {str(path)[:200]}: {exc.strerror or exc}") from None
    if not found:
        raise MissingFileError(f"no such weights file: {path}")
    if not path.is_file() and not path.is_dir():  # a FIFO would block (a folder: below)
        raise WeightsError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as exc:  # a folder, no permission
        raise WeightsError(f"{path}: cannot read it as a weights file ({exc.strerror})") from None
    suffix = path.suffix.lower()
    # safetensors first: its first byte is its header's length, 0x80 for 128 bytes,
    # which is also how a pickle starts
    if suffix not in PICKLE_SUFFIXES and (suffix == ".safetensors" or head[8:9] == b"{"):
        return _read_safetensors(path), False
    # torch.save's zip format holds ".../data.pkl"; an .npz holds only .npy members.
    if suffix in PICKLE_SUFFIXES or head[:1] == b"\x80" or \
            (head[:2] == b"PK" and any(n.endswith(".pkl") for n in zip_members(path))):
        raise WeightsError(_convert_hint(path))
    if head[:2] == b"PK":
        return read_npz(path, ".npz file"), True
    raise WeightsError(f"{path}: not a safetensors or .npz file (a state_dict saved by "
                       f"safetensors.torch.save_file or np.savez is expected)")


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise WeightsError(f"{path}: reading safetensors needs the safetensors package: "
                           f'pip install "nnumba[safetensors]" (or convert to .npz)') from None
    try:
        return load_file(str(path))
    except Exception as exc:  # the package raises its own error types
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})"
                           f"{_bfloat16_hint(exc)}") from None


def _bfloat16_hint(exc) -> str:
    return "; numpy has no bfloat16: save the weights as float32 (in PyTorch: " \
        "{k: v.float() for k, v in state_dict.items()})" if "bfloat16" in str(exc).lower() else ""


# ---- order: the model's parameters against the state_dict's tensors -------------------

def _targets(model):
    """[(nnumba name, layer label, Parameter)] in model order."""
    return [(name, model.layers[int(name.split(".")[0])].label, p) for name, p in model.params()]


_LEAVES = "#"  # marks a module's own tensors in _named_siblings' keys
_WEIGHT_BIAS = {"weight": 0, "bias": 1}


def _named_siblings(names):
    """{parent module path: named child modules}: the sibling orders a sorted file lost;
    and {(_LEAVES, *module path): its own tensors} for a module with tensors other than
    weight and bias, whose registration order it lost too (torch's own modules register
    weight, then bias)."""
    groups = {}
    for name in names:
        parts = name.split(".")
        for depth, part in enumerate(parts[:-1]):
            if not part.isdecimal():
                groups.setdefault(tuple(parts[:depth]), set()).add(part)
        groups.setdefault((_LEAVES, *parts[:-1]), set()).add(parts[-1])
    return {k: sorted(v) for k, v in groups.items() if len(v) > 1 and not (
        k[:1] == (_LEAVES,) and v <= _WEIGHT_BIAS.keys())}


def _sort_key(name, ranks):
    # A module's own tensors come before its children, as in torch's state_dict (weight,
    # then bias; others by ``ranks``); numbered children by number, named ones by ``ranks``.
    parts = name.split(".")
    key = [(0, int(p)) if p.isdecimal() else (1, ranks.get((tuple(parts[:d]), p), 0))
           for d, p in enumerate(parts[:-1])]
    leaf = parts[-1]
    return key + [(-1, ranks.get(((_LEAVES, *parts[:-1]), leaf), _WEIGHT_BIAS.get(leaf, 2)),
                   leaf)]


def _orders(groups) -> int:
    return math.prod(math.factorial(len(children)) for _, children in groups)


def _candidate_orders(names, tensors, source, targets):
    # A module whose own tensors are named as a layer's parameters are (a plugin's batch
    # norm: weight, bias, running_mean, running_var) takes that layer's order, untried:
    # a model of many would be past the orders tried.
    layer_orders = {}
    for name, _, _ in targets:
        index, own = name.split(".", 1)
        layer_orders.setdefault(index, []).append(own)
    fixed, groups = {}, []
    for parent, children in _named_siblings(names).items():
        named = {tuple(o) for o in layer_orders.values() if set(o) == set(children)}
        if parent[:1] == (_LEAVES,) and len(named) == 1:
            fixed.update({(parent, leaf): i for i, leaf in enumerate(named.pop())})
        else:
            groups.append((parent, children))
    if _orders(groups) > _MAX_ORDERS:  # too many to try: the sorted order only, where no
        _refuse_swappable(names, tensors, source, groups)  # other could fit as well
        groups = [(parent, [children]) for parent, children in groups
                  if parent[:1] != (_LEAVES,)]  # (own tensors: weight, bias, then by name)
    else:
        groups = [(parent, list(itertools.permutations(children))) for parent, children in groups]
    for combo in itertools.product(*[[(parent, p) for p in perms] for parent, perms in groups]):
        ranks = {(parent, child): i for parent, perm in combo for i, child in enumerate(perm)}
        ranks.update(fixed)
        yield sorted(names, key=lambda n: _sort_key(n, ranks))


def _refuse_swappable(names, tensors, source, groups):
    """WeightsError where two siblings hold a tensor of one shape: a block of one could
    then stand where the other's is (two 4x4 layers in one, one in the other), and the
    order a sorted file lost is unknown.  Siblings of distinct shapes have one order."""
    for parent, children in groups:
        owner, leaves = {}, parent[:1] == (_LEAVES,)
        for child in children:
            prefix = ".".join((*parent[leaves:], child))
            for shape in {tensors[n].shape for n in names
                          if n == prefix or not leaves and n.startswith(prefix + ".")}:
                if shape in owner:
                    raise WeightsError(
                        f"{source}: its {'tensors' if leaves else 'modules'} "
                        f"{owner[shape]!r} and {child!r} both hold tensors of shape "
                        f"{shape}, and a safetensors file keeps names sorted, not the "
                        f"module order, which is then unknown; export to .npz instead, "
                        f"which keeps it")
                owner[shape] = child


def _first_mismatch(order, tensors, targets):
    """Index of the first tensor that does not fit its parameter, or None if all fit: a
    tensor fits a parameter of its shape, unless it is named as another of that layer's
    parameters (a module's 'offset' is no layer's 'scale'), or one is a weight and the
    other a bias."""
    layer_names = {}
    for name, _, _ in targets:
        index, own = name.split(".", 1)
        layer_names.setdefault(index, set()).add(own)
    for i, (key, (name, _, p)) in enumerate(zip(order, targets)):
        (index, own), leaf = name.split(".", 1), key.rsplit(".", 1)[-1]
        if tensors[key].shape != p.value.shape or leaf != own and (
                leaf in layer_names[index] or {leaf, own} == _WEIGHT_BIAS.keys()):
            return i
    return None if len(order) == len(targets) else min(len(order), len(targets))


def _mismatch_message(source, order, tensors, targets, at):
    where = f"{source} does not fit the model"
    if at < min(len(order), len(targets)):
        key, (name, label, p) = order[at], targets[at]
        text = (f"{where}: torch tensor #{at} {key!r} has shape {tuple(tensors[key].shape)}, "
                f"nnumba parameter #{at} {name!r} ({label}) has shape {p.value.shape}")
        if len(order) != len(targets):  # the clash may be a tensor missing (or one extra)
            absent = [repr(n) for n, _, _ in targets if n not in tensors]
            named = f"; none is named {', '.join(absent[:3])}" \
                if 0 < len(absent) < len(targets) else ""
            text += (f"; it holds {len(order)} tensors, the model has {len(targets)} "
                     f"parameters{named}")
        return text
    if len(order) > len(targets):
        extra = ", ".join(repr(k) for k in order[len(targets):])
        return (f"{where}: it holds {len(order)} tensors, the model has {len(targets)} "
                f"parameters; torch tensors left without a parameter: {extra}")
    missing = ", ".join(f"{n!r} ({label})" for n, label, _ in targets[len(order):])
    return (f"{where}: it holds {len(order)} tensors, the model has {len(targets)} "
            f"parameters; nnumba parameters left without a tensor: {missing}")


def _arrays(tensors: Mapping, source) -> dict[str, np.ndarray]:
    """The state_dict's values as numpy arrays, keyed by their (string) names: a torch
    tensor is detached from autograd and moved to the host (torch is never imported
    here), a numpy array or a nested list taken as it is."""
    out = {}
    for key, value in tensors.items():
        if not isinstance(key, str):
            raise WeightsError(f"{source}: tensor names are strings (a state_dict's keys), "
                               f"got {show(key)}")
        try:
            if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
                value = value.detach().cpu()
            masked = isinstance(value, np.ma.MaskedArray) and int(np.ma.count_masked(value))
            out[key] = np.asarray(value)
        except Exception as exc:  # noqa: BLE001 - torch's dtypes numpy lacks, ragged lists
            raise WeightsError(f"{source}: torch tensor {show(key)} cannot be read as a "
                               f"numpy array ({type(exc).__name__}: {exc})"
                               f"{_bfloat16_hint(exc)}") from None
        if masked:  # np.asarray would load the values under the mask
            raise WeightsError(f"{source}: tensor {show(key)} is a masked array with {masked} "
                               f"masked value(s); fill them first (value.filled(...))")
    return out


def match_state_dict(model, tensors: Mapping, ordered: bool = True, source="state_dict"):
    """``[(torch name, nnumba name)]`` pairing every tensor with a parameter; raises
    WeightsError naming both sides at the first mismatch."""
    _check_model("match_state_dict", model)
    if not isinstance(tensors, Mapping):  # .items() of a module, a list, None...
        hint = " (a torch module: pass module.state_dict())" if callable(
            getattr(tensors, "state_dict", None)) else ""
        raise WeightsError(f"{source}: a state_dict is a mapping of names to tensors, got "
                           f"{show(tensors)}{hint}")
    targets = _targets(model)
    tensors = _arrays(tensors, source)
    names, own = list(tensors), [name for name, _, _ in targets]
    if ordered and names != own and set(names) == set(own):
        # Named exactly as the model's parameters, in another order (a merged or re-keyed
        # dict): the names say which is which, where the order would pair them crosswise.
        names = own
    for key, value in tensors.items():
        if value.dtype.kind != "f":
            why = "nnumba's parameters are real" if value.dtype.kind == "c" else \
                "buffers such as BatchNorm's counters have no place in a nnumba model"
            raise WeightsError(f"{source}: torch tensor {key!r} is {value.dtype}, not a floating "
                               f"point parameter ({why})")
    def fitting(orders):
        return [order for order in orders if _first_mismatch(order, tensors, targets) is None]
    candidates = [names] if ordered else list(_candidate_orders(names, tensors, source,
                                                                targets))
    fits = fitting(candidates)
    if ordered and names == sorted(names):
        # Sorted by name: maybe what safetensors' own loaders return, kept as a mapping
        # or an .npz, which lost the module order as the file did ("10" < "2"): where the
        # order rebuilt from the names fits, it is the one, unless the given one fits and
        # is as good a reading of the names (numbered parts in order).
        try:
            rebuilt = fitting(_candidate_orders(names, tensors, source, targets))
        except WeightsError:  # too many orders to try, siblings of one shape
            rebuilt = []
        numbered = names == sorted(names, key=lambda n: _sort_key(n, {}))
        if rebuilt and (not fits or not numbered):
            candidates, fits, ordered = rebuilt, rebuilt, False
        elif fits and any(order != names for order in rebuilt):
            warnings.warn(f"{source}: its names are sorted, and the tensors fit the model in "
                          f"another order too; if it came from safetensors' load_file, "
                          f"which sorts them, pass the file's path, whose order is checked",
                          UserWarning, stacklevel=3)
    if len(fits) > 1:
        raise WeightsError(f"{source}: the tensors fit the model in {len(fits)} orders "
                           f"(a safetensors file keeps names sorted, not the module order); "
                           f"export to .npz instead, which keeps it")
    if not fits:
        # Report against the order that fits longest: its first misfit is the real one.
        best = max(candidates, key=lambda o: _first_mismatch(o, tensors, targets))
        count = 0 if ordered else _orders(_named_siblings(names).items())
        many = f"{count:,}" if count < 10**12 else "more than 10**12"  # (a factorial)
        hint = f"; its named modules could be in {many} orders, more than are tried " \
            f"(a safetensors file keeps names sorted): export to .npz instead, which keeps " \
            f"the module order" if count > _MAX_ORDERS else ""
        raise WeightsError(_mismatch_message(source, best, tensors, targets,
                                             _first_mismatch(best, tensors, targets)) + hint)
    return [(key, name) for key, (name, _, _) in zip(fits[0], targets)]


def load_torch_weights(model, source):
    """Copy a PyTorch state_dict into ``model`` (a Sequential) by order and shape (by
    name where the names are exactly the model's own parameters').

    ``source``: a .safetensors or .npz path, or a mapping of names to arrays in the
    state_dict's order. A nnumba .npz (from ``nnumba.save``) loads by its own names.

    The values must be finite and within the model's dtype (float64 weights past
    float32's range would become infinity); the model is left untouched when they
    are not, or when they do not fit it."""
    _check_model("load_torch_weights", model)  # before a file is read
    if isinstance(source, Mapping):
        tensors, ordered, label = _arrays(source, "state_dict"), True, "state_dict"
    elif not isinstance(source, (str, os.PathLike)):
        hint = " (a torch module: pass module.state_dict())" if callable(
            getattr(source, "state_dict", None)) else ""
        raise WeightsError(f"torch weights are a path or a state_dict (a mapping of names "
                           f"to tensors), got {show(source)}{hint}")
    else:
        path = Path(source)
        if is_nnumba_npz(path):
            return load_weights(model, path)
        (tensors, ordered), label = read_state_dict(path), str(path)
    pairs = match_state_dict(model, tensors, ordered, label)
    params = dict(model.params())
    values = {name: cast_checked(tensors[key], params[name].value.dtype,  # all before any copy
                                 f"{label}: parameter {name}", f" (torch tensor {key!r})")
              for key, name in pairs}
    for name, value in values.items():
        params[name].value[...] = value
    return model
