"""Fuzz round 19: a saved plugin layer is never rebuilt from another plugin's class
of the same name, and an experiment's figure never replaces a user's file (or writes
through a link, or over a folder).  The references are the saving process's own
predictions and the user's own bytes."""
import os
import subprocess
import sys
import textwrap

import pytest

import nnumba
from nnumba.cli import main
from nnumba.experiments import run_experiment


# ---- a saved plugin layer rebuilt from another plugin ---------------------------------

_SAVE = textwrap.dedent("""
    import sys, numpy as np, nnumba
    m = nnumba.Sequential.from_spec(
        [{"type": "Linear", "in_features": 3, "out_features": 4},
         {"type": "LeakyReLU", "negative_slope": 0.2},
         {"type": "Linear", "in_features": 4, "out_features": 2}], seed=0)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.save(sys.argv[1] + "/x.npy", x)
    np.save(sys.argv[1] + "/y.npy", m.predict(x))
    nnumba.save(m, sys.argv[1] + "/m.npz")
""")

_LOAD_WITH_ANOTHER_PLUGIN = textwrap.dedent("""
    import sys, warnings, numpy as np, nnumba
    from nnumba import Layer, hookimpl

    class LeakyReLU(Layer):  # another plugin's layer of the same name: another function
        def __init__(self, negative_slope=0.01):
            super().__init__()
            self.negative_slope = negative_slope
        def _forward(self, x):
            return np.where(x > 0, 3 * x, self.negative_slope * x).astype(x.dtype)

    class OtherActs:
        @hookimpl
        def nnumba_register_layers(self):
            return {"LeakyReLU": LeakyReLU}

    nnumba.register_plugin(OtherActs(), name="other_acts")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            m = nnumba.load_model(sys.argv[1] + "/m.npz")
        except nnumba.NnumbaError as exc:
            print("REFUSED", exc)
            sys.exit(0)
    said = [str(w.message) for w in caught if "nnumba-extra-activations" in str(w.message)]
    same = np.allclose(m.predict(np.load(sys.argv[1] + "/x.npy")), np.load(sys.argv[1] + "/y.npy"))
    print("WARNED" if said else "SILENT", "same" if same else "different")
""")


def _python(code, *args, env=None):
    full = {**os.environ, "NUMBA_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=full, timeout=300)


def test_a_saved_plugin_layer_is_not_silently_rebuilt_from_another_plugin(tmp_path):
    """A model saved with nnumba-extra-activations' LeakyReLU records that distribution
    (`distributions` in the file). Loaded where that plugin is absent but another one
    registers a layer called LeakyReLU, load_model (and so `train --model`, `classify
    --weights`) builds the other plugin's class without a word: the predictions differ
    from the saving process's own. registry_names.recorded_layers only qualifies the
    name when the recorded distribution is present; otherwise the bare name goes to
    whoever claims it. It should refuse (or at least warn), naming the distribution
    the file's layer came from."""
    pytest.importorskip("nnumba_extra_activations")
    if "LeakyReLU" not in nnumba.get_registry().entries("layer"):
        pytest.skip("nnumba-extra-activations is not loaded here")
    saved = _python(_SAVE, str(tmp_path))
    assert saved.returncode == 0, saved.stderr
    out = _python(_LOAD_WITH_ANOTHER_PLUGIN, str(tmp_path),
                  env={"NNUMBA_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(("REFUSED", "WARNED")), out.stdout
    if out.stdout.startswith("REFUSED"):
        assert "nnumba-extra-activations" in out.stdout


def test_the_same_plugin_registered_at_run_time_still_loads(tmp_path):
    """The guard above must not refuse the legitimate case: the very plugin the file
    records, registered at run time (autoload off), loads and predicts as saved."""
    pytest.importorskip("nnumba_extra_activations")
    if "LeakyReLU" not in nnumba.get_registry().entries("layer"):
        pytest.skip("nnumba-extra-activations is not loaded here")
    assert _python(_SAVE, str(tmp_path)).returncode == 0
    code = textwrap.dedent("""
        import sys, numpy as np, nnumba
        import nnumba_extra_activations.plugin as P
        nnumba.register_plugin(P)
        m = nnumba.load_model(sys.argv[1] + "/m.npz")
        print(np.allclose(m.predict(np.load(sys.argv[1] + "/x.npy")), np.load(sys.argv[1] + "/y.npy")))
    """)
    out = _python(code, str(tmp_path), env={"NNUMBA_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert out.returncode == 0 and out.stdout.strip() == "True", (out.stdout, out.stderr)


def _fake_distribution(site, dist, entry_point, factor):
    """An installed plugin distribution ``dist`` (a dist-info on ``site``) whose entry
    point ``entry_point`` registers a layer 'Act': y = factor * x."""
    pkg = site / dist
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(f"""
        from nnumba import Layer, hookimpl
        class Act(Layer):
            def _forward(self, x):
                return (x * {factor}).astype(x.dtype)
            def _backward(self, g):
                return (g * {factor}).astype(g.dtype)
        @hookimpl
        def nnumba_register_layers():
            return {{"Act": Act}}
    """))
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[nnumba]\n{entry_point} = {dist}\n")


def test_a_saved_layer_of_an_uninstalled_distribution_is_not_taken_from_another(tmp_path):
    """The same with installed distributions: saved where only fuzzA (Act: y = 2x) is
    installed, the file records {'Act': 'fuzzA 0.1'}; loaded where fuzzA was replaced
    by fuzzB (Act: y = 3x), load_model returns fuzzB's layer and predicts 3x without a
    word. (Saved while both were installed, as 'fa:Act', the same load is refused with
    a clear message naming fuzzA: the outcome depends on a clash at save time.)"""
    site_a, site_b = tmp_path / "a", tmp_path / "b"
    _fake_distribution(site_a, "fuzzA", "fa", 2)
    _fake_distribution(site_b, "fuzzB", "fb", 3)
    path = str(tmp_path / "m.npz")
    save = _python("import sys, nnumba; nnumba.save(nnumba.Sequential.from_spec("
                   "[{'type': 'Act'}], seed=0), sys.argv[1])", path,
                   env={"PYTHONPATH": str(site_a)})
    assert save.returncode == 0, save.stderr
    load = textwrap.dedent("""
        import sys, numpy as np, nnumba
        try:
            m = nnumba.load_model(sys.argv[1])
        except nnumba.NnumbaError as exc:
            print("REFUSED", exc); sys.exit(0)
        print("LOADED", m.predict(np.ones((1, 2), np.float32)).ravel().tolist())
    """)
    out = _python(load, path, env={"PYTHONPATH": str(site_b)})
    assert out.returncode == 0, out.stderr
    # what the saved model computes: fuzzA's 2x (the saving process's own layer)
    assert out.stdout.startswith("REFUSED") or out.stdout.strip() == "LOADED [2.0, 2.0]", \
        out.stdout
    if out.stdout.startswith("REFUSED"):
        assert "fuzzA" in out.stdout



# ---- an experiment's figure and the user's files -------------------------------------

def test_experiment_run_keeps_a_users_own_file_of_the_figures_name(tmp_path, capsys):
    """`nnumba experiment run xor --out DIR` writes DIR/xor.png over whatever file the
    user had of that name (here a text file, not even a PNG), silently. Round 18 made
    `run all` refuse an index.html/index.md it did not write; the figures
    (figures.with_figure: fig.savefig(out_dir / filename)) are written blind."""
    pytest.importorskip("matplotlib")
    mine = b"the user's own notes, not a figure\n"
    (tmp_path / "xor.png").write_bytes(mine)
    status = main(["experiment", "run", "xor", "--fast", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert (tmp_path / "xor.png").read_bytes() == mine, (status, err)


def test_experiment_figure_does_not_write_through_a_link_into_another_file(tmp_path, capsys):
    """DIR/xor.png a symbolic link to the user's file elsewhere: savefig follows the
    link and the file it points to becomes a PNG (`train --save` refuses the same)."""
    pytest.importorskip("matplotlib")
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"precious\n")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(precious, out / "xor.png")
    status = main(["experiment", "run", "xor", "--fast", "--out", str(out)])
    err = capsys.readouterr().err
    assert precious.read_bytes() == b"precious\n", (status, err)


def test_experiment_figure_is_not_written_over_a_folder_of_its_name(tmp_path, capsys):
    """A folder named like the figure is refused before the run, not after it with a
    bare [Errno 21]."""
    pytest.importorskip("matplotlib")
    (tmp_path / "pooling.png").mkdir()
    assert main(["experiment", "run", "pooling", "--fast", "--out", str(tmp_path)]) == 2
    assert "pooling.png: the figure of that name is a folder" in capsys.readouterr().err


def test_an_earlier_runs_figure_is_replaced_and_the_library_refuses_a_users_file(tmp_path):
    """The figure a run drew is replaced by the next run (what --out DIR is for); the
    library's run_experiment keeps a user's file too."""
    pytest.importorskip("matplotlib")
    first = run_experiment("pooling", out_dir=tmp_path, fast=True)
    assert first.figures == [tmp_path / "pooling.png"]
    os.utime(tmp_path / "pooling.png", (0, 0))
    assert run_experiment("pooling", out_dir=tmp_path, fast=True).figures == first.figures
    assert os.stat(tmp_path / "pooling.png").st_mtime > 0  # written again
    (tmp_path / "pooling.png").write_bytes(b"mine")
    with pytest.raises(ValueError, match="no mark of a figure nnumba drew"):
        run_experiment("pooling", out_dir=tmp_path, fast=True)
    assert (tmp_path / "pooling.png").read_bytes() == b"mine"
