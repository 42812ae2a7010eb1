"""``nnumba info``: versions, devices and the threading set-up."""
import json
import os
import platform


def add_parser(sub):
    p = sub.add_parser("info", help="show versions, devices and threading")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args):
    import numba
    import numpy

    import nnumba
    info = {
        "nnumba": nnumba.__version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "cpu_cores": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "threading_layer_config": numba.config.THREADING_LAYER,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
        "devices": ["cpu"],
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:<24} {value}")
    return 0
