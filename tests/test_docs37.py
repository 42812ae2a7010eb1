"""Docs walk 37: every public top-level name documents itself (help(nnumba.get_loss)
showed only its signature; so did get_layer, get_dataset and unregister_plugin)."""
import inspect

import nnumba


def test_every_public_top_level_name_has_a_docstring():
    missing = [n for n in nnumba.__all__ if len(inspect.getdoc(getattr(nnumba, n)) or "") < 20]
    assert not missing, missing


def test_the_getters_return_what_their_docstrings_name():
    from nnumba.layers import Linear
    from nnumba.losses import CrossEntropy
    assert nnumba.get_layer("Linear") is Linear
    assert nnumba.get_loss("CrossEntropy") is CrossEntropy
    assert callable(nnumba.get_dataset("mnist-5k"))
