"""Which models and losses a trainer's fit() is training, and the checks that keep
other calls off them: a model keeps one batch's arrays between the calls of a step."""
import threading

from ..errors import ContractError, FitRunningError

#: id of a model or loss that a trainer's fit() is training -> that thread's ident
#: (by id, not an attribute: a copy made during fit is no model being trained)
_fitting: dict[int, int] = {}
# Checked and marked under one lock: two fits started together would both pass the check.
_fitting_lock = threading.Lock()


def check_not_fitting(obj, what: str,
                      hint: str = "use a copy here (model.copy(), a loss of its own)"):
    """ContractError where a trainer's fit() in another thread is training ``obj`` (a
    model, or a loss): each keeps one batch's input and buffers at a time, which a
    forward here would overwrite, silently or past an array's end (fuzz round 11)."""
    busy = _fitting.get(id(obj))
    if busy is not None and busy != threading.get_ident():
        raise ContractError(f"{what} is being trained by fit() in another thread, and keeps "
                            f"one batch at a time: {hint}")


def check_not_in_fit(model, what: str, change: bool = True):
    """FitRunningError for a ``change`` of a model fit() trains, on this thread too (a
    callback): its batches and buffers keep the dtype it started with."""
    if change and _fitting.get(id(model)) is not None:
        raise FitRunningError(f"the model's {what} cannot change while fit() trains it (a "
                            f"callback asked); change it between fit calls")


def hold_for_fit(model, loss, held: list) -> None:
    """Mark ``model`` and ``loss`` as trained by this thread (refused where another
    thread trains them).  ``held``, made by the caller before its ``try``, gets what
    :func:`release_after_fit` restores before the marks are set: a Ctrl-C at any
    moment leaves nothing marked that the release would not clear."""
    with _fitting_lock:
        for obj, what in ((model, "this model"), (loss, "this loss")):
            check_not_fitting(obj, what)
        held[:] = [(id(obj), _fitting.get(id(obj))) for obj in (model, loss)]
        _fitting.update({key: threading.get_ident() for key, _ in held})


def release_after_fit(held: list):
    """One dict update (None marks nothing), which a Ctrl-C cannot stop halfway: a
    loop of pops left a model marked as being trained, refused to other threads."""
    with _fitting_lock:
        _fitting.update(dict(held))
        for key, before in held:  # (a Ctrl-C here leaves a None: nothing marked)
            if before is None:
                _fitting.pop(key, None)
