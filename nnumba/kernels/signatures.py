"""Whether a kernel set's kernels take the CPU set's arguments (what a device's
``kernels`` checks before a model moves there): a kernel missing an argument would
otherwise fail at the first step, with a TypeError naming neither the device nor
its plugin."""
import inspect


def misfits(kernels) -> list[str]:
    """The kernels of a set that cannot be called as the CPU set's are: its required
    arguments by position, its optional ones by name (what the layers pass)."""
    from . import KERNELS, cpu
    if kernels is cpu:
        return []
    found = []
    for name in KERNELS:
        want, kernel = signature(getattr(cpu, name)), getattr(kernels, name)
        if want is not None and not _fits(kernel, want):
            shown = signature(kernel)
            found.append(f"{name}{'' if shown is None else shown} (the CPU set's: "
                         f"{name}{want})")
    return found


def _fits(kernel, want) -> bool:
    """Whether ``kernel`` can be called as ``want`` says; True where nothing tells."""
    params = list(want.parameters.values())
    required = [p for p in params if p.default is p.empty]
    nin, nout = getattr(kernel, "nin", None), getattr(kernel, "nout", None)
    if isinstance(nin, int) and isinstance(nout, int):  # a ufunc (numba's @vectorize):
        return len(required) == len(params) and len(params) in (nin, nin + nout)  # out last
    # an @njit's Python function; a wrapper both as it is and as what it wraps says
    readable = [sig for sig in (signature(kernel), signature(kernel, follow_wrapped=False))
                if sig is not None]
    for sig in readable:
        try:
            sig.bind(*range(len(required)),
                     **{p.name: None for p in params if p.default is not p.empty})
            return True
        except TypeError:
            pass
    return not readable


def signature(kernel, follow_wrapped=True):
    try:
        return inspect.signature(getattr(kernel, "py_func", kernel),
                                 follow_wrapped=follow_wrapped)
    except (TypeError, ValueError):
        return None
