"""``nnumba info``: versions, devices and the threading set-up."""
import json
import os
import platform


def add_parser(sub):
    p = sub.add_parser("info", help="show versions, devices and threading")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def _threading_layer():
    """The threading layer numba actually runs (known once its threads started)."""
    import numba
    try:
        from ..device import CPU
        CPU.kernels  # starts numba's threads as training would
        return numba.threading_layer()
    except Exception as exc:  # noqa: BLE001 - informative only
        return f"unknown ({type(exc).__name__})"


def run(args):
    import numba
    import numpy

    import nnumba
    from ..device import device_names, versions
    from ..kernels.cpu import blas
    from ..registry import get_registry
    devices = {}
    for name in device_names():
        device = get_registry().get("device", name)
        try:
            devices[name] = device.describe()
            if devices[name].get("available") and not get_registry().entry("device",
                                                                            name).builtin:
                device.kernels  # noqa: B018 - a plugin's set that lacks or misfits kernels
        except Exception as exc:  # noqa: BLE001 - a broken plugin device says why
            devices[name] = {"name": name, "available": False,
                             "reason": f"{type(exc).__name__}: {exc}"}
    info = {
        "nnumba": nnumba.__version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        **versions(),
        "cpu_cores": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "threading_layer_config": numba.config.THREADING_LAYER,
        "threading_layer": _threading_layer(),
        "gemm": blas.describe(),
        "devices": [name for name, d in devices.items() if d.get("available")],
        "device_details": devices,
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            if key == "device_details":
                for name, detail in value.items():
                    text = ", ".join(f"{k} {v}" for k, v in detail.items() if k != "name")
                    print(f"{'device ' + name:<24} {text}")
            else:
                print(f"{key:<24} {value}")
    return 0
