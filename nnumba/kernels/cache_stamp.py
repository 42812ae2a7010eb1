"""numba's disk cache stamps a kernel with the file it is defined in only, yet the
machine code it keeps also holds what the kernel inlines or calls from other
files: the formulas of ``formulas.py`` and its kernel set's helpers.  After such
a file changes (an edit, a ``git pull``) numba would load stale code: a silent
wrong answer.  Each kernel module ends with ``stamp(globals())``, which makes the
stamp of its cached kernels cover every source of ``nnumba/kernels`` as well, so
that a change to any of them recompiles.  A plugin's kernels that call formulas
or helpers from other files of its package do the same with their own root:
``stamp(globals(), Path(__file__).parent)`` (docs/plugins.md)."""
import hashlib
from pathlib import Path


def sources_hash(root=Path(__file__).parent) -> str:
    """One hash of every .py file under ``root`` (names and contents)."""
    digest = hashlib.sha1()
    for path in sorted(Path(root).rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


SOURCES = sources_hash()
_hashes = {Path(__file__).parent.resolve(): SOURCES}   # root -> its hash, once a process


def stamp(namespace: dict, root=None):
    """Tie the disk cache of every cached kernel in ``namespace`` to the .py sources
    under ``root`` (default: ``nnumba/kernels``), so that an edit to any of them
    recompiles those kernels.  Call it at the end of the kernels' module."""
    root = Path(root or Path(__file__).parent).resolve()
    if root not in _hashes:
        if not root.is_dir():  # else an empty hash, and no protection
            raise ValueError(f"stamp: root must be the folder of the kernels' sources, "
                             f"got {str(root)!r}, which is not a folder")
        _hashes[root] = sources_hash(root)
    key = _hashes[root]
    for obj in list(namespace.values()):
        # numba's private layout (dispatcher._cache._cache_file._source_stamp): where it
        # differs, the kernels keep numba's own stamp, as before.
        cache_file = getattr(getattr(obj, "_cache", None), "_cache_file", None)
        old = getattr(cache_file, "_source_stamp", None)
        if old is not None and not (isinstance(old, tuple) and old[-1:] == (key,)):
            cache_file._source_stamp = (old, key)
