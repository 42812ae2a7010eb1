"""Data sets, the IDX file format, checksummed downloads and mini-batching."""

from .batching import batches, iterate
from .datasets import (DATASETS, Dataset, load_dataset, load_embedded_mnist,
                       load_fashion_mnist, load_mnist)
from .download import DownloadError, cache_dir, download, download_mnist
from .idx import IDXError, read_idx, write_idx

__all__ = [
    "DATASETS", "Dataset", "DownloadError", "IDXError", "batches", "cache_dir", "download",
    "download_mnist", "iterate", "load_dataset", "load_embedded_mnist", "load_fashion_mnist",
    "load_mnist", "read_idx", "write_idx",
]
