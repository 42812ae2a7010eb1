"""Data sets, the IDX file format, checksummed downloads and mini-batching."""

from .arrays import DataFileError, load_arrays, stratified_split
from .batching import batches, iterate
from .check import DatasetError, check_dataset, load_dataset
from .datasets import (DATASETS, Dataset, load_embedded_mnist,
                       load_fashion_mnist, load_mnist)
from .download import DownloadError, cache_dir, download, download_mnist
from .idx import IDXError, read_idx, write_idx

__all__ = [
    "DATASETS", "DataFileError", "Dataset", "DatasetError", "DownloadError", "IDXError",
    "batches", "cache_dir", "check_dataset",
    "download", "download_mnist", "iterate", "load_arrays", "load_dataset",
    "load_embedded_mnist", "load_fashion_mnist", "load_mnist", "read_idx",
    "stratified_split", "write_idx",
]
