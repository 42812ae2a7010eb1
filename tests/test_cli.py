"""The `nnumba` command end to end, as a user runs it."""
import json
import subprocess
import sys



def nnumba_cli(*args, check=True):
    return subprocess.run([sys.executable, "-m", "nnumba", *args], capture_output=True,
                          text=True, check=check, timeout=300)


def test_train_json_on_embedded_data_and_save(tmp_path):
    out = nnumba_cli("train", "--epochs", "2", "--train-size", "1000", "--json",
                     "--save", str(tmp_path / "w.npz"))
    result = json.loads(out.stdout)  # stdout holds the JSON object alone
    assert {"test_accuracy", "train_loss", "epochs", "seconds"} <= set(result)
    assert result["epochs"] == 2 and result["test_accuracy"] > 0.6
    assert "epoch 2/2" in out.stderr
    import nnumba
    model = nnumba.load_model(tmp_path / "w.npz")
    assert model.spec()[1] == {"type": "Linear", "in_features": 784, "out_features": 256,
                               "bias": True}


def test_train_perceptron_prints_the_lectures_table():
    out = nnumba_cli("train", "--trainer", "perceptron")
    assert "epoch 0 nb_changes" in out.stdout and "train_error" in out.stdout
    assert "converged" in out.stdout


def test_train_with_a_spec_file(tmp_path):
    spec = [{"type": "Flatten"}, {"type": "Linear", "in_features": 784, "out_features": 10}]
    (tmp_path / "m.json").write_text(json.dumps(spec))
    result = json.loads(nnumba_cli("train", "--model", str(tmp_path / "m.json"), "--epochs", "1",
                                   "--train-size", "500", "--trainer", "gd", "--lr", "0.5",
                                   "--json").stdout)
    assert result["trainer"] == "gd" and 0 <= result["test_accuracy"] <= 1


def test_user_errors_are_one_line_not_tracebacks():
    out = nnumba_cli("train", "--model", "mpl", check=False)
    assert out.returncode == 2
    assert "did you mean 'mlp'" in out.stderr and "Traceback" not in out.stderr
    out = nnumba_cli("train", "--dataset", "cifar", check=False)
    assert out.returncode == 2 and "unknown dataset 'cifar'" in out.stderr


def test_plugins_lists_builtins_with_their_plugin():
    report = json.loads(nnumba_cli("plugins", "--json").stdout)
    layers = {e["name"]: e for e in report["layer"]}
    assert layers["Linear"]["plugin"] == "nnumba.layers.linear"
    assert layers["Linear"]["distribution"] == "nnumba (built-in)"
    assert {e["name"] for e in report["loss"]} >= {"CrossEntropy", "Hinge", "Logistic", "MSE"}
    assert layers["MaxPool2d"]["summary"] == ("The maximum of each kh x kw window; ties go to "
                                              "the first in row-major order.")


def test_plugins_shows_a_models_description_else_its_first_sentence():
    from nnumba.commands.plugins import _summary
    from nnumba.models import NamedModel

    def build(width: int = 3):
        """Two layers. The second is wider:
        see below."""
        return []
    assert _summary("model", NamedModel(build, description="a model. Two sentences.")) \
        == "a model. Two sentences."
    assert _summary("model", NamedModel(build)) == "Two layers."
    assert _summary("model", build) == "Two layers."
    build.__doc__ = "x" * 150
    assert _summary("model", build) == "x" * 97 + "..."


def test_info_reports_threading():
    info = json.loads(nnumba_cli("info", "--json").stdout)
    assert info["threading_layer"] and info["numba"] and "cpu" in info["devices"]
