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
        want, got = signature(getattr(cpu, name)), signature(getattr(kernels, name))
        if want is None or got is None:  # a builtin without one: nothing to compare
            continue
        params = list(want.parameters.values())
        required = [p for p in params if p.default is p.empty]
        try:
            got.bind(*range(len(required)),
                     **{p.name: None for p in params if p.default is not p.empty})
        except TypeError:
            found.append(f"{name}{got} (the CPU set's: {name}{want})")
    return found


def signature(kernel):
    try:
        return inspect.signature(getattr(kernel, "py_func", kernel))  # an @njit's Python
    except (TypeError, ValueError):
        return None
