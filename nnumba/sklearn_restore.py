"""What a scikit-learn estimator's failed fit leaves: the estimator as it was."""
import contextlib


@contextlib.contextmanager
def as_before_on_error(estimator):
    """A fit that fails leaves the estimator as it was: fitted as before, or unfitted
    (not classes_ from the new data beside the old model), its model's weights and its
    trainer's momentum and batch order those of before (a continued fit trains them
    in place up to the failure)."""
    before = dict(estimator.__dict__)
    model, trainer = before.get("model_"), before.get("_trainer")
    values = [] if model is None else [(p, p.value.copy()) for _, p in model.params()]
    dtype = None if model is None else model.dtype  # set_params(dtype=) converts it
    kept = None if trainer is None else (*trainer.state(), len(trainer.history.epochs),
                                         trainer.updates, trainer.epochs_before)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(before)
        if model is not None and model.dtype != dtype:
            # the failed fit's values may not fit the old dtype, which astype refuses
            # (a diverged float64 fit): cleared first, the old ones written after
            for p, _ in values:
                p.value[...] = 0
            model.zero_grad()
            model.astype(dtype)
        for p, value in values:
            p.value[...] = value
        if kept is not None:
            settings, velocity, epochs, updates, before = kept
            trainer.resume({**settings, "velocity": velocity})
            del trainer.history.epochs[epochs:]
            trainer.updates, trainer.epochs_before = updates, before  # (resume set the sum)
        raise
