"""A peer library's side of a benchmark, run in a fresh process of its own.

    python benchmarks/peers.py JOB_JSON

The parent (benchmarks/conftest.py) starts one such process per job, with the
environment it had before nnumba was imported and the thread count nnumba
uses.  This process never imports nnumba (unless the job asks for it, to
measure what importing nnumba does to a peer).  It frees one large block first,
as nnumba's side does (:func:`settle_allocator`), builds the job, runs it once
to warm up, prints ``{"ready": ...}``, then answers every line ``round`` on
stdin with ``{"seconds": s}``: the time of one round, measured in here, so the
pipe costs nothing.  The parent asks for a round just before each of nnumba's
rounds: the two take turns.

Data and weights come from the parent as .npy/.npz files (no pickle), so both
sides compute the same thing.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np


def _load(path):
    return np.load(path, allow_pickle=False)


# ---- the jobs: each returns a function that runs one round -------------------------

def _torch_epoch(torch, net, x, y, batch, lr, momentum):
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    gen = torch.Generator().manual_seed(0)
    loss_fn = torch.nn.functional.cross_entropy

    def epoch():
        for idx in torch.randperm(len(x), generator=gen).split(batch):
            opt.zero_grad()
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
    return epoch


def torch_train(job):
    """One SGD epoch of a network given as a spec (the same layers nnumba builds)."""
    import torch
    x = torch.from_numpy(_load(job["x"]))
    y = torch.from_numpy(_load(job["y"]).astype(np.int64))
    net = torch_from_spec(torch, job["spec"])
    return _torch_epoch(torch, net, x, y, job["batch"], job["lr"], job["momentum"])


def torch_infer(job):
    """Inference (eval mode, no autograd) of a spec with the parent's weights."""
    import torch
    net = torch_from_spec(torch, job["spec"]).eval()
    with np.load(job["weights"], allow_pickle=False) as weights, torch.no_grad():
        for name, tensor in net.state_dict().items():
            tensor.copy_(torch.from_numpy(weights[name]))
    x = torch.from_numpy(_load(job["x"]))

    def infer():
        with torch.inference_mode():
            return net(x)
    if "out" in job:  # the parent checks that both sides compute the same function
        np.save(job["out"], infer().numpy(), allow_pickle=False)
    return infer


def torch_layers(job):
    """Per-layer forward (and backward) times of a spec at one batch: a profile.
    A round runs every layer once; the times land in PROFILE."""
    import torch
    net = torch_from_spec(torch, job["spec"])
    net.train(job.get("train", True))
    x = torch.from_numpy(_load(job["x"]))
    backward = job.get("backward", True)

    def run():
        h = x.requires_grad_(False)
        outs = []
        for i, layer in enumerate(net):
            h_in = h.detach().requires_grad_(backward and i > 0)
            t = time.perf_counter()
            with torch.set_grad_enabled(backward):
                h = layer(h_in)
            PROFILE.setdefault(f"{i} forward", []).append(time.perf_counter() - t)
            outs.append((h_in, h))
        if backward:
            for i in reversed(range(len(outs))):
                h_in, h = outs[i]
                if not h.requires_grad:
                    continue
                g = torch.ones_like(h)
                t = time.perf_counter()
                h.backward(g)
                PROFILE.setdefault(f"{i} backward", []).append(time.perf_counter() - t)
    return run


def sklearn_perceptron(job):
    from sklearn.linear_model import Perceptron
    x, y = _load(job["x"]), _load(job["y"])
    # The lecture's algorithm: eta 1, no penalty, samples in order, a fixed epoch count.
    clf = Perceptron(eta0=1.0, shuffle=False, tol=None, max_iter=job["epochs"])
    return lambda: clf.fit(x, y)


def sklearn_mlp(job):
    """MLPClassifier.fit with the job's params; RESULT holds its accuracies."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits
    if job.get("threads"):  # numpy's BLAS does MLPClassifier's work: nnumba's thread count
        threadpool_limits(int(job["threads"]))
    warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed epoch count is the job
    x, y = _load(job["x"]), _load(job["y"])
    clf = MLPClassifier(**job["params"])

    def fit():
        clf.fit(x, y)
        RESULT["train_accuracy"] = float(clf.score(x, y))
        if "x_test" in job:
            RESULT["test_accuracy"] = float(clf.score(_load(job["x_test"]), _load(job["y_test"])))
    return fit


def numpy_sgemm(job):
    """``repeat`` float32 products (m, k) @ (k, n) into one output array."""
    rng = np.random.default_rng(0)
    m, k, n = job["shape"]
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)

    def run():
        for _ in range(job.get("repeat", 1)):
            np.matmul(a, b, out=out)
    return run


GAP = 0.05  # seconds of quiet before each round: nnumba's threads may still spin
#: the block :func:`settle_allocator` frees: under glibc's 32 MiB cap (64-bit) on the
#: sizes that move its thresholds
SETTLE_BYTES = 30 << 20


def settle_allocator():
    """Free one large block, as a data pipeline does, so that glibc's malloc raises
    its mmap and trim thresholds (to the block's size, and twice it) now rather than
    whenever an incidental free does.  Below them it trims the heap after every step
    and grows it again: a PyTorch lecture-CNN epoch took ~1.5x as long (~11 MB of
    page faults a step, 7.5x as many faults) in a process that had loaded its data
    with np.load than in one that had freed such a block; its MLP and AlexNet at
    batch 1 were unchanged, batch 16 ~7 % slower.  Every side of every benchmark
    starts so: nnumba's process (conftest) and every peer's, whatever its job
    (docs/performance.md, "The peers' malloc state")."""
    np.ones(SETTLE_BYTES, np.uint8)

JOBS = {"torch-train": torch_train, "torch-infer": torch_infer, "torch-layers": torch_layers,
        "sklearn-perceptron": sklearn_perceptron, "sklearn-mlp": sklearn_mlp,
        "numpy-sgemm": numpy_sgemm}
PROFILE: dict = {}   # torch-layers: "i forward" -> seconds per round
RESULT: dict = {}    # anything else a job reports (e.g. accuracy)


def torch_from_spec(torch, spec):
    """nnumba's spec format as a torch.nn.Sequential, layer for layer, so that
    state_dict() lists the parameters in nnumba's order."""
    nn = torch.nn
    make = {"Conv2d": nn.Conv2d, "MaxPool2d": nn.MaxPool2d, "Linear": nn.Linear,
            "AdaptiveAvgPool2d": nn.AdaptiveAvgPool2d, "Dropout": nn.Dropout,
            "ReLU": nn.ReLU, "Tanh": nn.Tanh, "Flatten": nn.Flatten}
    layers = []
    for item in spec:
        kwargs = {k: v for k, v in item.items() if k not in ("type", "seed", "resample")}
        layers.append(make[item["type"]](**kwargs))
    return nn.Sequential(*layers)


def _threads(job):
    """The thread count nnumba uses, for every pool this process may start."""
    n = job.get("threads")
    if n is None:
        return
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(int(n))


def _nnumba_first(job):
    """Import nnumba (and let it train a few steps) before the peer's own work: what
    the peer's speed looks like in a process that uses nnumba too."""
    if job.get("nnumba") not in ("import", "train"):
        return
    import nnumba
    if job["nnumba"] == "train":
        rng = np.random.default_rng(0)
        x = rng.random((500, 1, 28, 28), dtype=np.float32)
        y = rng.integers(0, 10, 500)
        model = nnumba.build("mlp", seed=0)
        nnumba.SGDTrainer(model, nnumba.get_loss("CrossEntropy")(), lr=0.01,
                          precompile=False).fit(x, y, epochs=1)


def main():
    job = json.loads(sys.argv[1])
    settle_allocator()
    _nnumba_first(job)
    _threads(job)
    run = JOBS[job["kind"]](job)
    for _ in range(job.get("warmup", 1)):
        run()
    PROFILE.clear()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        time.sleep(GAP)
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        print(json.dumps({"seconds": seconds, "result": RESULT}), flush=True)
    print(json.dumps({"profile": PROFILE}), flush=True)


if __name__ == "__main__":
    main()
