"""Image classification data sets in the MNIST layout.

Every loader returns a `Dataset` whose images are float32 (N, 1, 28, 28)
scaled to [0, 1] and whose labels are int64 in [0, 10).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import IDXError, LabelError, MissingFileError, SpecError
from ..layers.validation import integer, show
from .download import MNIST_SHA256, cache_dir, download_mnist
from .file_errors import DataFileError
from .idx import read_idx

__all__ = [
    "Dataset", "DATASETS", "load_embedded_mnist", "load_mnist",
    "load_fashion_mnist", "MNIST_FILES", "DIGIT_CLASSES", "FASHION_CLASSES",
]

EMBEDDED_DIR = Path(__file__).with_name("mnist5k")
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
MNIST_FILES = {  # role -> standard base name; each may also carry a .gz suffix
    "train images": "train-images-idx3-ubyte",
    "train labels": "train-labels-idx1-ubyte",
    "test images": "t10k-images-idx3-ubyte",
    "test labels": "t10k-labels-idx1-ubyte",
}
DIGIT_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
EMBEDDED_TRAIN_PER_CLASS, EMBEDDED_TEST_PER_CLASS = 400, 100


@dataclass
class Dataset:
    """A classification data set, split into a training and a test set: what every
    loader returns, a plugin's too (``nnumba_register_datasets``).

    - ``name``: the name it is registered under;
    - ``x_train``, ``x_test``: float32 inputs ``(N, ...)``, one per-sample shape for
      both (``nnumba train`` trains in float32 and refuses other dtypes);
    - ``y_train``, ``y_test``: int64 class numbers ``(N,)`` in ``[0, len(classes))``;
    - ``classes``: the class names, in class-number order;
    - ``description``: one line saying where the data comes from and how it is split.

    A loader is called as ``loader(root=None, download=False)`` (``nnumba train
    --dataset NAME --data-dir ROOT --download``): ``root`` is the folder holding
    the data set's files, None meaning the loader's default place (e.g.
    ``cache_dir() / NAME``); ``download=True`` fetches missing files into it first
    (:func:`nnumba.data.download` checks their digest). Without it, a missing file
    is a FileNotFoundError saying where the loader looked and how to get the data;
    a loader that cannot honour ``root`` or ``download`` raises ValueError saying so.
    """
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    description: str

    def subset(self, train: int | None = None, test: int | None = None) -> "Dataset":
        """The first `train` / `test` examples (None keeps all), for quick runs."""
        kept = []
        for n, split in ((train, "train"), (test, "test")):
            if n is not None:  # a negative slice would drop the *last* ones
                n, have = integer("subset", split, n, 1, None), len(getattr(self, f"y_{split}"))
                kept.append(f"the first {n} {split}" if n < have else f"all {have} {split}")
        y = self.y_train[:train]
        if train is not None and len(np.unique(y)) < 2 <= len(np.unique(self.y_train)):
            hint = "a set sorted by label? shuffle it, or take more" if len(y) > 1 else \
                "take more"
            c = int(y[0])  # (a hand-made Dataset's label may lie past its classes)
            raise LabelError(f"{self.name}: the first {len(y)} training sample(s) hold one "
                             f"class only ({self.classes[c] if 0 <= c < len(self.classes) else c}"
                             f"), which trains nothing: {hint}")
        said = self.description.rstrip()  # (a plugin's may end without a full stop)
        said += "" if not said else " " if said.endswith((".", "!", "?", ")")) else ". "
        return replace(self, x_train=self.x_train[:train], y_train=y,
                       x_test=self.x_test[:test], y_test=self.y_test[:test],
                       description=f"{said}Subset: {' and '.join(kept)}." if kept else
                       self.description)

    def binary(self, negative: int, positive: int, split: str = "train"):
        """(x, y) of two classes only, y = -1 for ``negative`` and +1 for ``positive``
        (the lecture's MNIST 0 vs 1 for the perceptron)."""
        if not isinstance(split, str) or split not in ("train", "test"):
            raise SpecError(f"binary: split must be 'train' or 'test', got {show(split)}")
        n_classes = len(self.classes)
        # class numbers only: 0.5 would match no label and "0" none either
        negative = integer("binary", "negative", negative, 0, None)
        positive = integer("binary", "positive", positive, 0, None)
        for c in (negative, positive):
            if c >= n_classes:
                raise LabelError(f"{self.name} has classes 0..{n_classes - 1}, got {c}")
        if negative == positive:
            raise LabelError(f"the two classes must differ, got {negative} twice")
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        keep = (y == negative) | (y == positive)
        absent = [c for c in (negative, positive) if not (y == c).any()]
        if split == "train" and absent:  # else a perceptron "converges" on one class
            c, name = absent[0], self.classes[absent[0]]
            shown = f"class {c}" if name == str(c) else f"class {c} ({name!r})"
            raise LabelError(f"{self.name}: {shown} has no training samples ({len(y)} "
                             f"samples); the two classes need both")
        return x[keep], np.where(y[keep] == positive, 1, -1)


def _images(raw: np.ndarray, source) -> np.ndarray:
    if raw.dtype != np.uint8 or raw.ndim != 3 or raw.shape[1:] != (28, 28):
        raise IDXError(f"{source}: expected uint8 images of shape (N, 28, 28), got {raw.dtype} {raw.shape}")
    return (raw.astype(np.float32) / np.float32(255)).reshape(-1, 1, 28, 28)


def _labels(raw: np.ndarray, source, n_images: int, n_classes: int) -> np.ndarray:
    if raw.ndim != 1 or raw.dtype.kind not in "iu":
        raise IDXError(f"{source}: expected a 1-D integer label vector, got {raw.dtype} {raw.shape}")
    if len(raw) != n_images:
        raise IDXError(f"{source}: {len(raw)} labels but {n_images} images")
    if raw.min() < 0 or raw.max() >= n_classes:
        raise IDXError(f"{source}: labels must lie in [0, {n_classes}), found {raw.min()}..{raw.max()}")
    return raw.astype(np.int64)


#: SHA-256 of Fashion-MNIST's 10,000 test labels as bytes: MNIST's files have its names
#: and format, and a folder of one loaded as the other trained silently
FASHION_TEST_LABELS = "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9"


def _fingerprint(labels: np.ndarray) -> str:
    return hashlib.sha256(labels.astype(np.uint8).tobytes()).hexdigest()


def _find_files(root: Path, what: str, fetch: str) -> dict[str, Path]:
    if root.exists() and not root.is_dir():
        raise DataFileError(f"{what} folder {root} is a file, not a folder")
    if not root.is_dir():
        raise MissingFileError(f"{what} folder {root} does not exist; {fetch}")
    found = {role: next((p for p in (root / f"{base}.gz", root / base) if p.is_file()), None)
             for role, base in MNIST_FILES.items()}
    missing = [f"{MNIST_FILES[role]}[.gz]" for role, hit in found.items() if hit is None]
    if missing:
        raise MissingFileError(f"{what} folder {root} is missing {', '.join(missing)}; {fetch}")
    return found


def _load_folder(root, name: str, what: str, classes: list[str], fetch: str) -> Dataset:
    """``fetch``: how to get the files, said where they are missing."""
    root = Path(root).expanduser()
    files = _find_files(root, what, fetch)
    x_train = _images(read_idx(files["train images"]), files["train images"])
    x_test = _images(read_idx(files["test images"]), files["test images"])
    y_train = _labels(read_idx(files["train labels"]), files["train labels"], len(x_train), len(classes))
    y_test = _labels(read_idx(files["test labels"]), files["test labels"], len(x_test), len(classes))
    if name == "mnist" and _fingerprint(y_test) == FASHION_TEST_LABELS:  # one file format
        warnings.warn(f"{root} holds Fashion-MNIST (its test labels), not MNIST: its classes "
                      f"are clothes, not digits; load it as 'fashion-mnist'", UserWarning,
                      stacklevel=3)
    return Dataset(name, x_train, y_train, x_test, y_test, list(classes),
                   f"{what} from {root}: {len(x_train)} train / {len(x_test)} test images, the standard split.")


def load_embedded_mnist() -> Dataset:
    """The 5,000-digit MNIST subset shipped with nnumba, split 4,000 / 1,000.

    Deterministic and stratified: of each class's 500 images, the first 400 in
    file order train and the last 100 test. Both sets are ordered round-robin
    by class (0, 1, ..., 9, 0, 1, ...), so any prefix is class-balanced.
    """
    images = EMBEDDED_DIR / "images-idx3-ubyte.gz"
    labels_path = EMBEDDED_DIR / "labels-idx1-ubyte.gz"
    x = _images(read_idx(images), images)
    y = _labels(read_idx(labels_path), labels_path, len(x), 10)
    per_class = [np.flatnonzero(y == c) for c in range(10)]
    want = EMBEDDED_TRAIN_PER_CLASS + EMBEDDED_TEST_PER_CLASS
    if any(len(idx) != want for idx in per_class):
        raise ValueError(f"{labels_path}: expected {want} images per class, got {[len(i) for i in per_class]}")
    # (per class, class) arrays flattened row-major give the round-robin order.
    train = np.stack([idx[:EMBEDDED_TRAIN_PER_CLASS] for idx in per_class], axis=1).ravel()
    test = np.stack([idx[-EMBEDDED_TEST_PER_CLASS:] for idx in per_class], axis=1).ravel()
    return Dataset("mnist-5k", x[train], y[train], x[test], y[test], list(DIGIT_CLASSES),
                   "Embedded 5,000-digit MNIST subset (500 per class), split deterministically and "
                   "stratified: per class the first 400 in file order train, the last 100 test "
                   "(4,000 / 1,000).")


def load_mnist(root) -> Dataset:
    """Full MNIST (60,000 / 10,000) from a folder holding the 4 standard files."""
    return _load_folder(root, "mnist", "MNIST", DIGIT_CLASSES,
                        "download=True (nnumba train --download) fetches them")


def load_fashion_mnist(root=None) -> Dataset:
    """Fashion-MNIST (60,000 / 10,000) from `root`, `$NNUMBA_FASHION_MNIST` or
    /usr/share/datasets/fashion-mnist, in that order."""
    named = os.environ.get("NNUMBA_FASHION_MNIST")
    if root is None and named and not Path(named).is_dir():  # a typo: not the system copy
        raise MissingFileError(f"NNUMBA_FASHION_MNIST={named}: no such folder; name the "
                               f"folder holding Fashion-MNIST's 4 files, or unset it")
    if root is None:
        candidates = [Path(p) for p in (named, SYSTEM_FASHION_MNIST) if p]
        root = next((p for p in candidates if p.is_dir()), None)
        if root is None:
            raise MissingFileError(
                f"Fashion-MNIST not found in {', '.join(map(str, candidates))}. Install it with "
                "`apt-get install dataset-fashion-mnist`, or pass a folder holding "
                "train-images-idx3-ubyte.gz and the other 3 files (or set NNUMBA_FASHION_MNIST).")
    return _load_folder(root, "fashion-mnist", "Fashion-MNIST", FASHION_CLASSES,
                        "`apt-get install dataset-fashion-mnist` installs them")


# Loaders share one signature, loader(root=None, download=False), so that
# plugins can add data sets to DATASETS the same way.
def _mnist_5k(root=None, download=False) -> Dataset:
    """5,000 MNIST digits embedded in nnumba (4,000 train, 1,000 test), 1 x 28 x 28."""
    if root is not None or download:
        raise SpecError("mnist-5k is embedded in nnumba: it takes no root folder and no download")
    return load_embedded_mnist()


def _mnist(root=None, download=False) -> Dataset:
    """The 70,000 MNIST digits (60,000 train), from a folder or downloaded, 1 x 28 x 28."""
    if download:
        return load_mnist(download_mnist(root))
    if root is None:
        cached = cache_dir() / "mnist"
        if all((cached / name).is_file() for name in MNIST_SHA256):
            return load_mnist(cached)
        raise SpecError(f"mnist needs a folder with the 4 MNIST files (root=..., on the command "
                        f"line --data-dir DIR), or download=True (--download) to fetch them "
                        f"into {cached}")
    return load_mnist(root)


def _fashion_mnist(root=None, download=False) -> Dataset:
    """Zalando's 70,000 clothing images in 10 classes (60,000 train), 1 x 28 x 28."""
    if download:
        raise SpecError("fashion-mnist is not downloaded by nnumba: `apt-get install "
                         "dataset-fashion-mnist`, or pass a folder holding its 4 files")
    return load_fashion_mnist(root)


DATASETS: dict[str, Callable[..., Dataset]] = {
    "mnist-5k": _mnist_5k,
    "mnist": _mnist,
    "fashion-mnist": _fashion_mnist,
}
