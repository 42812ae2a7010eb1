"""An installed-looking plugin distribution for a child process: a module and a
.dist-info whose entry point is in ``group``, on a folder put on PYTHONPATH (what
``pip install`` would make, without installing anything)."""
import os
import textwrap


def fake_distribution(tmp_path, name, group, source, entry=None) -> dict:
    """The environment for a child process that sees the distribution ``name``."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    info = tmp_path / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry or f'{name} = {name}'}\n")
    return {**os.environ, "PYTHONPATH": str(tmp_path), "NUMBA_NUM_THREADS": "1"}
