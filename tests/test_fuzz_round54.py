"""Fuzz round 54 (the command line other than `train`): tables print on a stdout that
is not UTF-8; a plugin's prints stay off stdout, which --json keeps to one object; an
interrupted figure leaves nothing under its name; a refused `experiment run` makes
no --out folder; a plugin raising any BaseException at import is skipped.  Every
test runs the command in a subprocess, with a timeout."""
import json
import os
import subprocess
import sys
import textwrap

import pytest


def _env(**more):
    env = dict(os.environ)
    env.setdefault("NUMBA_NUM_THREADS", "1")
    env.update(more)
    return env


def _nnumba(*args, cwd=None, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "nnumba", *args], capture_output=True,
                          text=True, cwd=cwd, env=env or _env(), timeout=timeout)


def _fake_plugin(tmp_path, name, source):
    """An installed plugin as tests/test_plugin_trial2.py makes one: a module and a
    .dist-info with an nnumba entry point, on PYTHONPATH."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[nnumba]\n{name} = {name}\n")
    return _env(PYTHONPATH=f"{site}:{':'.join(sys.path)}")


# --- finding 1 -------------------------------------------------------------------------
@pytest.mark.parametrize("names", [["xorr"], ["all", "xor"]])
def test_experiment_run_refused_before_it_starts_leaves_no_out_folder(tmp_path, names):
    """A typo in an experiment name (or `all` with names) is refused before anything
    runs, but --out's folder (and every parent) has already been created."""
    out = tmp_path / "new" / "figures"
    run = _nnumba("experiment", "run", *names, "--fast", "--out", str(out), cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("nnumba experiment"), run.stderr
    assert not (tmp_path / "new").exists(), "a refused command left --out's folders behind"


def test_experiment_out_path_too_long_leaves_no_partial_folders(tmp_path):
    """--out A/B/... longer than PATH_MAX: refused (good), after creating 20 levels."""
    out = "/".join(["b" * 200] * 25)
    run = _nnumba("experiment", "run", "xor", "--fast", "--out", out, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert not (tmp_path / ("b" * 200)).exists(), "refused --out left folders behind"


# --- finding 2 -------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["import", "hook"])
@pytest.mark.parametrize("command", [["info", "--json"], ["plugins", "--json"],
                                     ["summary", "mlp", "--json"],
                                     ["experiment", "list", "--json"]])
def test_json_stdout_stays_one_object_when_a_plugin_prints(tmp_path, where, command):
    """A plugin that prints (a banner at import, a debug print in a hook) puts its text
    before the JSON object on stdout: `nnumba X --json | jq` breaks."""
    source = ("print('hello from a plugin')\n" if where == "import" else """
        from nnumba import hookimpl

        @hookimpl
        def nnumba_register_models():
            print('hello from a plugin hook')
            return {}
        """)
    env = _fake_plugin(tmp_path, "f54_printer", source)
    run = _nnumba(*command, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    json.loads(run.stdout)  # one JSON object, nothing else


# --- finding 3 -------------------------------------------------------------------------
def test_truncated_figure_is_not_left_under_its_name_when_interrupted(tmp_path, monkeypatch):
    """Ctrl-C / SIGTERM while a figure is written leaves a truncated NAME.png (seen with
    `experiment run mlp-affine xor --fast --out D` killed at 1.7-2.1 s: PIL says "image
    file is truncated"); an empty one also blocks the next run ("carries no mark").
    The weights use atomic_file.write_whole; the figures write in place."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    from nnumba.experiments.figures import with_figure
    from nnumba.experiments.result import Result

    def interrupted_savefig(self, fname, *args, **kwargs):
        data = b"\x89PNG\r\n\x1a\n" + b"\0" * 100  # the first bytes, then Ctrl-C
        if hasattr(fname, "write"):
            fname.write(data)
        else:
            with open(fname, "wb") as f:
                f.write(data)
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", interrupted_savefig)
    result = Result(name="f54", claim="a claim", table="a table")
    with pytest.raises(KeyboardInterrupt):
        with_figure(result, tmp_path, lambda axes: axes[0].plot([0, 1]), title="t")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [], f"an interrupted figure left {left}"


# --- finding 4 -------------------------------------------------------------------------
def test_plugin_raising_a_baseexception_subclass_does_not_break_every_command(tmp_path):
    """SystemExit and KeyboardInterrupt from a plugin's import are handled; another
    BaseException subclass (pytest's Skipped, gevent's GreenletExit, ...) is a 43-line
    traceback with status 1 from every command, `nnumba plugins` (the diagnosis) too."""
    env = _fake_plugin(tmp_path, "f54_base", """
        class Weird(BaseException):
            pass

        raise Weird("raised at import")
        """)
    run = _nnumba("plugins", "--json", cwd=tmp_path, env=env)
    assert "Traceback" not in run.stderr, run.stderr[-600:]
    assert "f54_base" in run.stderr  # named, as other broken plugins are


# --- finding 5 -------------------------------------------------------------------------
def test_classify_does_not_print_half_a_table_then_fail_on_a_non_utf8_stdout(tmp_path):
    """With stdout in ASCII (PYTHONIOENCODING=ascii; a latin-1 or cp1252 locale alike),
    a label that the encoding lacks ends the command after 4 of 10 lines with status 2
    and "'ascii' codec can't encode character '\\u732b' in position 10", which names
    neither stdout nor the label."""
    pytest.importorskip("PIL")
    from PIL import Image
    import nnumba
    Image.new("L", (28, 28), 30).save(tmp_path / "img.png")
    model = nnumba.build([{"type": "Flatten"},
                          {"type": "Linear", "in_features": 784, "out_features": 3}])
    nnumba.save(model, tmp_path / "w.npz")
    (tmp_path / "labels.txt").write_text("cat\n猫\ndog\n", encoding="utf-8")
    run = _nnumba("classify", "img.png", "--weights", "w.npz", "--labels", "labels.txt",
                  "--top", "3", cwd=tmp_path, env=_env(PYTHONIOENCODING="ascii"))
    if run.returncode == 0:
        assert len(run.stdout.splitlines()) == 3
    else:  # refused: then before any output, saying it is stdout's encoding
        assert run.stdout == "", f"half a table, then an error: {run.stdout!r}"
        assert "stdout" in run.stderr or "encoding" in run.stderr, run.stderr


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "ascii"])
def test_summary_table_prints_on_a_non_utf8_stdout(tmp_path, encoding):
    """`nnumba summary lenet` (text, not --json) fails with status 2 on any stdout that
    is not UTF-8 ("'charmap' codec can't encode character '\\u2248' in position 1159"):
    its total line prints "(≈ 480 kB ...)". cp1252 is what Python gives a redirected
    stdout on Windows (`nnumba summary lenet > s.txt`) outside UTF-8 mode."""
    run = _nnumba("summary", "lenet", cwd=tmp_path, env=_env(PYTHONIOENCODING=encoding))
    assert run.returncode == 0, run.stderr
    assert "120,458" in run.stdout  # lenet's parameters, as the --json run counts them


def test_summary_of_a_non_ascii_file_name_on_an_ascii_stdout(tmp_path):
    """A spec file named ünï.json: its name heads the table (error lines already escape
    such names with printable)."""
    (tmp_path / "ünï.json").write_text(json.dumps(
        [{"type": "Linear", "in_features": 4, "out_features": 3}]))
    run = _nnumba("summary", "ünï.json", cwd=tmp_path, env=_env(PYTHONIOENCODING="ascii"))
    assert run.returncode == 0, run.stderr  # (--json works: json.dumps escapes the name)
    assert "15" in run.stdout  # 4 * 3 + 3 parameters
