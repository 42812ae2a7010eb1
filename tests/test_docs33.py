"""Docs round 33 (a new user following the README): `nnumba train` started with Ctrl-C
ignored (a script's `cmd &`) still stopped on it; `nnumba summary` asked for an
--input-shape that the spec's Linear then refused."""
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from nnumba.errors import NnumbaError
from nnumba.summary import summarize

ENV = {**os.environ, "NUMBA_NUM_THREADS": "1"}


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_train_keeps_an_ignored_ctrl_c_ignored(tmp_path):
    """POSIX shells start a script's `cmd &` with SIGINT ignored; Python keeps that
    (the reference below survives the signal), and so does nnumba now."""
    ref = subprocess.run([sys.executable, "-c", "import os, signal, time; os.kill(os.getpid(),"
                          " signal.SIGINT); time.sleep(0.2); print('survived')"],
                         capture_output=True, text=True, preexec_fn=_ignore_sigint)
    assert ref.stdout.strip() == "survived"
    p = subprocess.Popen([sys.executable, "-m", "nnumba", "train", "--epochs", "12",
                          "--train-size", "1000", "--no-progress"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=ENV,
                         preexec_fn=_ignore_sigint)
    for line in p.stdout:
        if line.startswith("epoch 2/"):
            break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-400:]
    assert "test accuracy" in out and "interrupted" not in err


SPEC = [{"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 5},
        {"type": "Flatten"}, {"type": "Linear", "in_features": 2304, "out_features": 10}]


def test_summarys_suggested_input_shape_fits_the_linear_too(tmp_path):
    with pytest.raises(NnumbaError) as info:
        summarize(SPEC)
    c, h, w = (int(v) for v in re.search(r"--input-shape ([\d,]+)", str(info.value))
               .group(1).split(","))
    assert 4 * (h - 4) * (w - 4) == 2304  # the convolution's output, by hand
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    r = subprocess.run([sys.executable, "-m", "nnumba", "summary", str(spec), "--input-shape",
                        f"{c},{h},{w}"], capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
