"""numba's disk cache stamps a kernel with the file it is defined in only, yet the
machine code it keeps also holds what the kernel inlines or calls from other
files: the formulas of ``formulas.py`` and its kernel set's helpers.  After such
a file changes (an edit, a ``git pull``) numba would load stale code: a silent
wrong answer.  Each kernel module ends with ``stamp(globals())``, which makes the
stamp of its cached kernels cover every source of ``nnumba/kernels`` as well, so
that a change to any of them recompiles."""
import hashlib
from pathlib import Path


def sources_hash(root=Path(__file__).parent) -> str:
    """One hash of every .py file under ``root`` (names and contents)."""
    digest = hashlib.sha1()
    for path in sorted(Path(root).rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


SOURCES = sources_hash()


def stamp(namespace: dict):
    """Tie the disk cache of every cached kernel in ``namespace`` to SOURCES."""
    for obj in list(namespace.values()):
        # numba's private layout (dispatcher._cache._cache_file._source_stamp): where it
        # differs, the kernels keep numba's own stamp, as before.
        cache_file = getattr(getattr(obj, "_cache", None), "_cache_file", None)
        old = getattr(cache_file, "_source_stamp", None)
        if old is not None and not (isinstance(old, tuple) and old[-1:] == (SOURCES,)):
            cache_file._source_stamp = (old, SOURCES)
