"""Docs walk 34: README and the docs followed from a fresh clone (every command and
block ran as shown but these); the doc excerpts must stay the code they quote, the
GPU page's kernel table must name every CUDA module, and a failed download on the
command line must say --data-dir once. (It also found AlexNet's max-pools 2.7x
slower since they became NaN-exact: fixed in kernels/cpu/pool.py; speed is the
fair suite's to measure, not a test's.)"""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _read(rel):
    return (ROOT / rel).read_text(encoding="utf-8")


# ---- F4: docs/architecture.md quotes LowRankLinear._forward, but not as the file has it.

def test_architecture_low_rank_excerpt_is_the_files_code():
    doc = _read("docs/architecture.md")
    block = doc.split("low_rank.py`:\n\n```python\n", 1)[1].split("```", 1)[0]
    src = _read("plugins/nnumba-extra-activations/src/nnumba_extra_activations/low_rank.py")
    assert block.strip("\n") in src, "the excerpt is not a verbatim part of low_rank.py"


# ---- F5: docs/gpu.md's table of CUDA kernel modules omits conv_pool.

def test_gpu_md_kernel_table_names_every_cuda_module():
    doc = _read("docs/gpu.md")
    table = doc.split("| module | kernels |", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`(\w+)`", "\n".join(l.split("|")[1] for l in table.splitlines()
                                                    if l.startswith("|"))))
    modules = {p.stem for p in (ROOT / "nnumba" / "kernels" / "cuda").glob("*.py")
               if not p.stem.startswith("_")}
    assert modules <= named, f"not in docs/gpu.md's table: {sorted(modules - named)}"


# ---- F6: the CLI's failed-download message speaks Python (root=..., load_dataset) and
# repeats its advice once per mirror.

def test_failed_download_on_the_command_line_names_data_dir_once(tmp_path):
    env = dict(os.environ, NNUMBA_MNIST_MIRROR="http://a.nnumba.invalid http://b.nnumba.invalid",
               NUMBA_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "nnumba", "train", "--dataset", "mnist",
                        "--download", "--data-dir", str(tmp_path / "mnist"), "--epochs", "1"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    err = p.stderr
    assert "--data-dir" in err, err
    assert "load_dataset(" not in err and "root=" not in err, err
    assert err.count("download the file manually") + err.count("manually into a folder") <= 1, err
