"""Docs walk 38: `nnumba summary FILE.npz` and `summarize(model)` size a model in its
own dtype (a float64 model was sized as float32, half its memory).  The reference:
the bytes of the arrays numpy reads from the saved file, and the model's own flat
parameter buffer."""
import json

import numpy as np

import nnumba


def _float64_logreg():
    return nnumba.build("logreg").astype("float64")


def test_summary_of_a_saved_float64_model_counts_float64_bytes(tmp_path, capsys):
    from nnumba.cli import main
    path = nnumba.save(_float64_logreg(), tmp_path / "m64.npz")
    with np.load(path) as f:  # independent reference: what the file holds
        stored = sum(f[k].nbytes for k in f.files
                     if f[k].dtype == np.float64 and f[k].ndim >= 1)
    assert stored == 7850 * 8
    capsys.readouterr()
    assert main(["summary", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dtype"] == "float64"
    assert out["total"]["param_bytes"] == stored       # 62,800, not 31,400


def test_summarize_of_a_float64_sequential_counts_its_own_bytes():
    from nnumba.summary import summarize
    model = _float64_logreg()
    result = summarize(model).to_dict()
    assert result["total"]["param_bytes"] == model.flat_params.nbytes   # 62,800
    assert result["dtype"] == "float64"
