"""docs/plugins.md runs as written.

Its blocks are taken in order: a ```python or ```toml block whose first line is
a path comment (``# src/pkg/mod.py``) is a file of the guide's plugin project,
written into a temporary folder; every other ```python block runs, in one
namespace, in order, and its trailing comment lines are output it must print: in a
process of its own, with the project's ``src`` on its path and no plugin loaded
from entry points (a reader who installed the guide's plugin here, as it says, has
it registered at import, where the guide registers it itself). For other processes the project is "installed" as ``pip install
-e`` would make it visible: its ``src`` on PYTHONPATH, beside a ``.dist-info``
holding the entry points of its pyproject.toml. There, every ``$ nnumba ...``
line of a ```console block must succeed without a warning about the plugin, and
the plugin's own tests (the guide's tests/test_plugin.py) must pass, on the
CUDA simulator too where numba-cuda is installed.
"""
import importlib
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest


DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
FILE_HEADER = re.compile(r"#\s*([\w./-]+\.(?:py|toml))\s*\n")


def _blocks():
    """[(language, path or None, text)] in the order of the guide."""
    out = []
    for lang, text in FENCE.findall(DOC.read_text()):
        header = FILE_HEADER.match(text)
        out.append((lang, header.group(1) if header and lang in ("python", "toml") else None,
                    text))
    return out


BLOCKS = _blocks()
FILES = {path: text for lang, path, text in BLOCKS if path}
SESSION = [text for lang, path, text in BLOCKS if lang == "python" and path is None]
COMMANDS = [line[2:] for lang, _, text in BLOCKS if lang == "console"
            for line in text.splitlines() if line.startswith("$ ")]


def _entry_points(pyproject: str) -> tuple[str, str, dict]:
    """(name, version, {entry-point name: module}) of the nnumba group."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the few lines the guide's file uses
        def value(key):
            return re.search(rf'^{key}\s*=\s*"([^"]+)"', pyproject, re.M).group(1)
        section = re.search(r"^\[project\.entry-points\.nnumba\]\n(.*?)(?=^\[|\Z)",
                            pyproject, re.S | re.M).group(1)
        return value("name"), value("version"), dict(re.findall(r'^(\S+)\s*=\s*"([^"]+)"',
                                                                 section, re.M))
    project = tomllib.loads(pyproject)["project"]
    return project["name"], project["version"], project["entry-points"]["nnumba"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The guide's plugin project, written and installed (see the module docstring)."""
    root = tmp_path_factory.mktemp("nnumba-spirals")
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    packages = {p.split("/")[1] for p in FILES if p.startswith("src/") and p.count("/") > 1}
    for package in packages:
        (root / "src" / package / "__init__.py").touch()
    name, version, entry_points = _entry_points(FILES["pyproject.toml"])
    # Only subprocesses see it (site/ on their PYTHONPATH): in this one, the guide
    # registers the plugin itself.
    dist_info = root / "site" / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\n"
                                        f"Version: {version}\n")
    (dist_info / "entry_points.txt").write_text(
        "[nnumba]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    return root


def _env(root, **extra):
    path = os.pathsep.join([str(root / "src"), str(root / "site"),
                            os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep),
            "NNUMBA_CACHE": str(root / "cache"), **extra}


def _run(root, args, **env):
    return subprocess.run([sys.executable, *args], cwd=root, env=_env(root, **env),
                          capture_output=True, text=True, timeout=600)


def test_the_guide_has_the_parts_the_harness_expects():
    assert {"pyproject.toml", "src/nnumba_spirals/plugin.py",
            "tests/test_plugin.py"} <= set(FILES)
    assert SESSION and COMMANDS


_MARK = "--- end of block "
_SESSION_RUNNER = f"""
import json, sys
namespace = {{"__name__": "docs_plugins"}}
for i, text in enumerate(json.load(open(sys.argv[1]))):
    exec(compile(text, f"plugins.md, python block {{i + 1}} (not a file)", "exec"), namespace)
    print("\\n{_MARK}" + str(i), flush=True)
print(json.dumps(namespace["history"].last("test_accuracy")))
"""


def test_session_blocks_run_in_order_and_print_what_they_show(project, tmp_path):
    (tmp_path / "blocks.json").write_text(json.dumps(SESSION))
    repo = str(DOC.parent.parent)
    env = {**os.environ, "NNUMBA_CACHE": str(project / "cache"),
           "NNUMBA_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": os.pathsep.join([str(project / "src"), repo])}
    run = subprocess.run([sys.executable, "-c", _SESSION_RUNNER, str(tmp_path / "blocks.json")],
                         cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    *printed, last = re.split(rf"\n{_MARK}\d+\n", run.stdout)
    assert len(printed) == len(SESSION), run.stdout[-3000:]
    for text, out in zip(SESSION, printed):
        shown = re.search(r"((?:^#.*\n)+)\Z", text, re.M)
        for line in (shown.group(1).splitlines() if shown else []):
            assert line[1:].strip() in out, (text, out)
    # The example trains: the accuracy it prints is a real one.
    assert json.loads(last) > 0.8


def test_the_entry_point_registers_the_plugin_and_names_its_distribution(project):
    run = _run(project, ["-m", "nnumba", "plugins", "--json"])
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    for kind, name in (("layer", "ResidualLinear"), ("loss", "SmoothedCrossEntropy"),
                       ("model", "spiral-net"), ("dataset", "spirals")):
        entry = next(e for e in report[kind] if e["name"] == name)
        assert entry["plugin"] == "spirals" and entry["distribution"] == "nnumba-spirals 0.1.0"
    # what each is: the model's build docstring, the layer's own docstring
    model = next(e for e in report["model"] if e["name"] == "spiral-net")
    assert model["summary"] == ("Linear, then depth x (ResidualLinear, ReLU), then one score "
                                "per class.")
    layer = next(e for e in report["layer"] if e["name"] == "ResidualLinear")
    assert layer["summary"] and layer["summary"] in " ".join(FILES[
        "src/nnumba_spirals/layers.py"].split())
    text = _run(project, ["-m", "nnumba", "plugins"]).stdout
    assert model["summary"] in text and layer["summary"] in text
    assert not [f for f in report["failed"] if f["plugin"] == "spirals"]
    assert not [c for c in report["clashes"] if "spirals" in c]
    help_text = _run(project, ["-m", "nnumba", "train", "--help"]).stdout
    assert "spirals" in help_text and "mnist-5k" in help_text


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_console_commands_succeed(project, command):
    args = shlex.split(command)
    assert args[0] == "nnumba"
    run = _run(project, ["-m", "nnumba", *args[1:]])
    assert run.returncode == 0, run.stderr
    assert not [line for line in run.stderr.splitlines()
                if "warning" in line and "spirals" in line], run.stderr
    if args[1] == "summary":
        assert "?" not in run.stdout  # flops() gives every layer's FLOPs
    if args[1] == "train":
        accuracy = float(re.search(r"test accuracy ([\d.]+)%", run.stdout).group(1))
        assert accuracy > 80, run.stdout


def test_the_plugins_own_tests_pass(project):
    run = _run(project, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                    reason='numba-cuda is not installed (pip install "nnumba[cuda]")')
def test_the_plugins_own_tests_pass_on_the_cuda_simulator(project):
    run = _run(project, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests"],
               NUMBA_ENABLE_CUDASIM="1")
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    assert "skipped" not in run.stdout, run.stdout  # the GPU tests ran


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_within_the_guide_reaches_the_one_heading_it_names():
    text = DOC.read_text()
    outside_code = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    slugs = [_slug(h) for h in re.findall(r"^#{1,6} (.+)$", outside_code, re.M)]
    assert len(slugs) == len(set(slugs)), f"headings share an anchor: {sorted(slugs)}"
    links = re.findall(r"\]\(#([\w-]+)\)", outside_code)
    assert links and set(links) <= set(slugs)
    # The hook table's link is to the section on the devices hook, not to a layer's.
    devices_row = next(line for line in text.splitlines() if "nnumba_register_devices" in line
                       and line.startswith("|"))
    target = re.search(r"\]\(#([\w-]+)\)", devices_row).group(1)
    section = outside_code.split(f"\n## {target.capitalize()}\n", 1)
    assert len(section) == 2 and "nnumba_register_devices" in section[1][:300]


def test_the_kernel_table_lists_the_kernel_set_with_its_signatures():
    """The guide's table of kernels is KERNELS, each with the CPU kernel's signature."""
    import inspect

    import nnumba.kernels as kernels
    import nnumba.kernels.cpu as cpu
    rows = re.findall(r"^\| `(\w+)(\(.*?\))` \|", DOC.read_text(), re.M)
    listed = dict(rows)
    assert list(listed) == list(kernels.KERNELS)
    for name, sig in listed.items():
        fn = getattr(cpu, name)
        real = inspect.signature(getattr(fn, "py_func", fn)).replace(
            return_annotation=inspect.Signature.empty)
        assert sig == str(real), name


def test_the_float64_check_the_guide_gives_tells_a_promoted_kernel_from_a_correct_one():
    import numpy as np
    from numba import njit
    text = DOC.read_text()
    pattern = re.search(r're\.search\(r"(.+?)", ir\)', text.replace("\n", " ")).group(1)

    @njit(fastmath=True)
    def correct(x, alpha, y):  # an option passed as x.dtype.type(alpha), as the guide says
        for i in range(x.size):
            y[i] = np.exp(alpha * x[i] * x.dtype.type(0.1))

    @njit(fastmath=True)
    def promoted(x, alpha, y):  # a bare 0.1: float64 arithmetic
        for i in range(x.size):
            y[i] = np.exp(alpha * x[i] * 0.1)
    x = np.ones(8, np.float32)
    for kernel, want in ((correct, False), (promoted, True)):
        kernel(x, np.float32(2), np.empty_like(x))
        assert any(re.search(pattern, ir) for ir in kernel.inspect_llvm().values()) == want
