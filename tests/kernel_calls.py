"""What the kernel-set tests compare: the error a call gives (an nnumba error's class,
or a bare exception spelt out), and a call's arguments on the device."""
import numpy as np


def error_of(call) -> str:
    from nnumba.errors import NnumbaError
    try:
        call()
    except NnumbaError as e:
        return type(e).__name__
    except Exception as e:  # noqa: BLE001 - what the test reports
        return f"bare {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
    return "no error"


def on_device(args) -> tuple:
    """The host arrays among ``args`` copied to the CUDA device (the simulator's)."""
    from nnumba.device import to_device
    return tuple(to_device(a) if isinstance(a, np.ndarray) else a for a in args)
