"""Docs walk 39: after following docs/plugins.md into the README's venv (``pip
install -e nnumba-spirals/``), the README's own ``python -m pytest`` failed in
tests/test_docs_plugins.py: its session ran in the pytest process, where the
installed entry point had registered ``spirals`` already (RegistryError at the
guide's ``nnumba.register_plugin``).

The test copies the harness and the guide into a temporary folder (nothing is
written into the repository), "installs" the guide's plugin there exactly as the
harness itself does for its subprocesses (src/ plus a .dist-info with the entry
point on PYTHONPATH, i.e. what ``pip install -e nnumba-spirals/`` gives), and runs
the session test in a fresh interpreter. It fails now and passes once the
harness (or the guide's block) copes with an installed ``spirals``.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nnumba

REPO = Path(nnumba.__file__).resolve().parent.parent
HARNESS = REPO / "tests" / "test_docs_plugins.py"
GUIDE = REPO / "docs" / "plugins.md"


def _load_harness(copy: Path):
    spec = importlib.util.spec_from_file_location("_docs39_harness_copy", copy)
    module = importlib.util.module_from_spec(spec)
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    return module


@pytest.mark.skipif(not (HARNESS.is_file() and GUIDE.is_file()),
                    reason="needs nnumba's source tree (tests/ and docs/)")
def test_docs_plugins_session_passes_with_the_guides_plugin_installed(tmp_path):
    # A copy of the harness and the guide, so that nothing is written into the repo.
    (tmp_path / "tests").mkdir()
    (tmp_path / "docs").mkdir()
    harness = tmp_path / "tests" / "test_docs_plugins.py"
    shutil.copy(HARNESS, harness)
    shutil.copy(GUIDE, tmp_path / "docs" / "plugins.md")
    h = _load_harness(harness)

    # The guide's project, installed as `pip install -e nnumba-spirals/` would make it
    # visible (the harness's own recipe for its subprocesses).
    project = tmp_path / "nnumba-spirals"
    for path, text in h.FILES.items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text)
    for package in {p.split("/")[1] for p in h.FILES if p.startswith("src/") and p.count("/") > 1}:
        (project / "src" / package / "__init__.py").touch()
    name, version, entry_points = h._entry_points(h.FILES["pyproject.toml"])
    dist_info = project / "site" / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (dist_info / "entry_points.txt").write_text(
        "[nnumba]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(project / "src"), str(project / "site"),
                                                       os.environ.get("PYTHONPATH", "")]))}
    # The plugin really is installed in that environment:
    probe = subprocess.run([sys.executable, "-c",
                            "import nnumba; print(nnumba.get_registry().pm.get_plugin('spirals') is not None)"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert probe.stdout.strip().endswith("True"), probe.stdout + probe.stderr

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         f"{harness}::test_session_blocks_run_in_order_and_print_what_they_show"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (
        "the README's test suite fails once the plugins.md guide's plugin is installed:\n"
        + run.stdout[-3000:] + run.stderr[-2000:])
