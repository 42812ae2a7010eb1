"""Review 44 (of this sitting's changes): a layer without arguments keeps the
signature () and Python's own message names it, while arguments passed to
super().__init__() are blamed on that call (fuzz round 55's fix had them blamed on
the layer, and every such layer's signature became (*args, **kwargs)); HOG, which
overrode backward(), checks its gradient as every layer does; a callback converting
the model mid-fit is a FitRunningError too; the data-parallel trainers' help() lists
their settings; the rest of the exceptions public docstrings name are exported, and
nnumba.io's help() lists what save's docstring points to.  (The first two are in
test_fuzz_round55.py.)"""
import inspect

import numpy as np
import pytest

import nnumba
from nnumba import errors, registry


# ---- F2: HOG (a registered plugin layer) bypasses backward's new gradient check ------

def test_a_model_of_hog_checks_the_gradient_backward_gets():
    """Fuzz round 55 made backward() check its gradient where no step needs one, for
    'every registered layer'; nnumba-features' HOG overrides backward() and still
    returns None for anything (None, a list, a wrong shape)."""
    try:
        hog = registry.get_layer("HOG")
    except errors.RegistryError:
        pytest.skip("nnumba-features not installed")
    model = nnumba.Sequential(hog(cell_size=4, height=8, width=8))
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    y = model.forward(x)
    for bad in (None, [1, 2, 3], np.ones((y.shape[0], y.shape[1] + 1), np.float32)):
        with pytest.raises(errors.NnumbaError):
            model.backward(bad)
    assert model.backward(np.ones_like(y)) is None  # a right one: nothing wants dl/dx


# ---- F3: FitRunningError covers only the trainer's attributes -------------------------

def test_a_callback_converting_the_model_gets_a_fit_running_error():
    """A callback changing what fit follows is a FitRunningError (docs walk 40) for the
    trainer's model/loss/batch_size/optimizer and a second fit, but a callback calling
    model.astype() mid-fit still gets ContractError, documented as 'a plugin layer
    breaks the layer contract': `except nnumba.FitRunningError` misses it."""
    from nnumba.layers import Linear
    from nnumba.losses import CrossEntropy
    x = np.random.default_rng(0).standard_normal((12, 4)).astype(np.float32)
    y = np.arange(12) % 2
    trainer = nnumba.SGDTrainer(nnumba.Sequential(Linear(4, 2), seed=0), CrossEntropy(),
                                lr=0.1, batch_size=4, precompile=False,
                                callbacks=[lambda t, row: t.model.astype(np.float64)])
    with pytest.raises(nnumba.FitRunningError):
        trainer.fit(x, y, epochs=2)


# ---- F4: the trainers' settings text misses the data-parallel trainers -----------------

@pytest.mark.parametrize("name", ["DistributedSGDTrainer", "DistributedGDTrainer"])
def test_help_of_a_data_parallel_trainer_names_its_settings(name):
    """'help() of each trainer lists its settings and defaults': the data-parallel
    trainers' own docstrings replace the base's, so theirs list none."""
    from nnumba.distributed import trainers
    doc = inspect.getdoc(getattr(trainers, name))
    for setting in ("lr", "momentum", "batch_size", "seed", "callbacks"):
        assert f"``{setting}``" in doc, setting


# ---- F5: exceptions a docstring names, exported by nnumba -----------------------------

@pytest.mark.parametrize("name", ["DownloadError", "MPIUnavailableError", "JSONFileError"])
def test_exceptions_public_docstrings_name_are_at_the_top_too(name):
    """Docs walk 40: 'every exception a docstring names lives in nnumba.errors and is
    exported by nnumba'; nnumba.data.download's docstring says DownloadError is raised,
    nnumba.jsonfile's names JSONFileError, `nnumba train --mpi` raises
    MPIUnavailableError (moved to nnumba.errors today) -- none is nnumba.<name>."""
    assert getattr(nnumba, name, None) is getattr(errors, name)
    assert name in nnumba.__all__


# ---- F6: io.__all__ hides what save's docstring points to ------------------------------

def test_help_of_io_lists_what_saves_docstring_refers_to():
    """nnumba.io.save's docstring says 'see check_save_path', which the new __all__
    leaves out of help(nnumba.io)."""
    import nnumba.io as io
    assert "check_save_path" in inspect.getdoc(io.save)
    assert "check_save_path" in io.__all__
