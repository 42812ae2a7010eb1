"""AlexNet and the lecture's CNN with weights from PyTorch: a torch model with random
weights, its state_dict exported to safetensors and .npz, imported by order and shape;
the logits agree. Then ``nnumba classify`` end to end, and the mismatch errors."""
import json
import re

import numpy as np
import pytest

import nnumba
from nnumba.cli import main
from nnumba.commands.classify import load_image, load_labels, normalise
from nnumba.errors import WeightsError
from nnumba.torch_import import load_torch_weights

torch = pytest.importorskip("torch")
nn = torch.nn
rng = np.random.default_rng(8)


class TorchAlexNet(nn.Module):
    """torchvision.models.AlexNet, written out (torchvision is not a dependency)."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def export(state_dict, folder, stem):
    """The state_dict as .safetensors and as .npz, the two formats nnumba reads."""
    from safetensors.torch import save_file
    st, npz = folder / f"{stem}.safetensors", folder / f"{stem}.npz"
    save_file(state_dict, str(st))
    np.savez(npz, **{k: v.numpy() for k, v in state_dict.items()})
    return st, npz


def assert_close(ours, theirs, rtol=1e-4):
    """Within rtol of the largest logit (random weights give logits near zero)."""
    err = np.abs(ours - theirs).max() / np.abs(theirs).max()
    assert err <= rtol, f"relative error {err:.2e}"


@pytest.fixture(scope="module")
def alexnet_files(tmp_path_factory):
    torch.manual_seed(0)
    net = TorchAlexNet().eval()
    with torch.no_grad():  # spread the logits so the ranking in classify means something
        net.classifier[6].weight.mul_(200.0)
    folder = tmp_path_factory.mktemp("alexnet")
    return (net, *export(net.state_dict(), folder, "alexnet"))


@pytest.fixture(scope="module")
def alexnet_model(alexnet_files):
    _, st, _ = alexnet_files
    return load_torch_weights(nnumba.build("alexnet", seed=0), st)


@pytest.mark.parametrize("size", [224, 127])  # 127: the adaptive pool turns 3x3 into 6x6
def test_alexnet_logits_match_pytorch(alexnet_files, alexnet_model, size):
    net = alexnet_files[0]
    x = rng.random((2, 3, size, size), dtype=np.float32)
    with torch.no_grad():
        expect = net(torch.from_numpy(x)).numpy()
    assert_close(alexnet_model.predict(x), expect)


def test_npz_and_safetensors_import_the_same(alexnet_files, alexnet_model):
    _, _, npz = alexnet_files
    twin = load_torch_weights(nnumba.build("alexnet", seed=1), npz)
    for (name, a), (_, b) in zip(alexnet_model.params(), twin.params()):
        assert np.array_equal(a.value, b.value), name


def lenet_torch():
    return nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(3), nn.Conv2d(32, 64, 5),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 256),
                         nn.ReLU(), nn.Linear(256, 10))


@pytest.mark.parametrize("fmt", ["safetensors", "npz"])
def test_lenet_logits_match_pytorch(tmp_path, fmt):
    torch.manual_seed(1)
    net = lenet_torch().eval()
    st, npz = export(net.state_dict(), tmp_path, "lenet")
    model = load_torch_weights(nnumba.build("lenet", seed=0), st if fmt == "safetensors" else npz)
    x = rng.random((5, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        expect = net(torch.from_numpy(x)).numpy()
    assert_close(model.predict(x), expect)


# ---- nnumba classify ------------------------------------------------------------------

@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    pil = pytest.importorskip("PIL.Image")
    yy, xx = np.mgrid[0:260, 0:300]
    rgb = np.stack([128 + 100 * np.sin(xx / 17.0), 128 + 90 * np.cos(yy / 23.0),
                    (xx + yy) % 256], axis=-1).astype(np.uint8)
    path = tmp_path_factory.mktemp("img") / "stripes.png"
    pil.fromarray(rgb).save(path)
    return path


def torch_preprocess(path):
    """The lecture's lines, with the resize to 224 x 224 classify does."""
    from PIL import Image
    img = Image.open(path).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
    img = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)
    img = img.reshape(1, *img.shape)
    return 0.5 + 0.5 * (img - img.mean()) / img.std()


def test_preprocessing_is_the_lectures(picture):
    ours = normalise(load_image(picture, 3, (224, 224)))
    np.testing.assert_allclose(ours, torch_preprocess(picture).numpy(), rtol=1e-5, atol=1e-5)


def test_classify_end_to_end(alexnet_files, picture, tmp_path, capsys):
    net, st, _ = alexnet_files
    labels = tmp_path / "imagenet1000_clsidx_to_human.txt"  # the lecture's format
    labels.write_text("{" + ",\n".join(f"{i}: 'thing {i}'" for i in range(1000)) + "}")
    with torch.no_grad():
        expect = net(torch_preprocess(picture)).numpy()[0]
    args = ["classify", str(picture), "--model", "alexnet", "--weights", str(st),
            "--labels", str(labels)]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 15
    assert all(re.fullmatch(r"#\d+ \(-?\d+\.\d\d\) thing \d+", line) for line in lines), lines
    assert main(args + ["--top", "5", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["top"]
    scale = np.abs(expect).max()
    ranked = np.sort(expect)[::-1]
    for k, row in enumerate(top):
        assert row["label"] == f"thing {row['index']}" and row["rank"] == k + 1
        assert abs(row["score"] - expect[row["index"]]) <= 1e-4 * scale
        assert abs(row["score"] - ranked[k]) <= 1e-4 * scale   # truly the k-th best
    assert lines[0].startswith(f"#1 ({top[0]['score']:.2f})")


def test_classify_says_how_to_get_pillow(monkeypatch, picture, capsys):
    import sys
    monkeypatch.setitem(sys.modules, "PIL", None)
    assert main(["classify", str(picture), "--weights", "w.npz"]) == 2
    assert 'pip install "nnumba[images]"' in capsys.readouterr().err


def test_labels_formats(tmp_path):
    (tmp_path / "a.txt").write_text("cat\ndog\n")
    (tmp_path / "b.json").write_text('{"1": "dog", "0": "cat"}')
    (tmp_path / "c.txt").write_text("{0: 'cat',\n 1: 'dog'}")
    (tmp_path / "d.txt").write_text("{0: __import__('os').getcwd()}")
    for name in "abc":
        assert load_labels(tmp_path / f"{name}.{'json' if name == 'b' else 'txt'}") == \
            {0: "cat", 1: "dog"}
    with pytest.raises(ValueError, match="not a JSON or literal"):
        load_labels(tmp_path / "d.txt")  # literals only: code is never run


# ---- mismatches and refusals ----------------------------------------------------------

def test_wrong_class_count_names_both_sides(alexnet_files):
    _, st, npz = alexnet_files
    for path in (st, npz):
        with pytest.raises(WeightsError) as err:
            load_torch_weights(nnumba.build("alexnet", num_classes=10, seed=0), path)
        message = str(err.value)
        assert "torch tensor #14 'classifier.6.weight' has shape (1000, 4096)" in message
        assert "nnumba parameter #14 '21.weight' (Linear #21) has shape (10, 4096)" in message


def test_wrong_model_and_wrong_count(alexnet_files, tmp_path):
    _, st, npz = alexnet_files
    with pytest.raises(WeightsError, match=r"torch tensor #0 'features.0.weight' has shape "
                                           r"\(64, 3, 11, 11\), nnumba parameter #0 "
                                           r"'0.weight' \(Conv2d #0\) has shape \(32, 1, 5, 5\)"):
        load_torch_weights(nnumba.build("lenet"), npz)
    with pytest.raises(WeightsError, match=r"nnumba parameter #0 '0.weight' \(Conv2d #0\)"):
        load_torch_weights(nnumba.build("lenet"), st)  # no order fits: the sorted one is shown
    sd = lenet_torch().state_dict()
    sd.pop("9.bias")
    _, npz = export(sd, tmp_path, "short")
    with pytest.raises(WeightsError, match=r"holds 7 tensors, the model has 8 parameters; "
                                           r"nnumba parameters left without a tensor: "
                                           r"'9.bias' \(Linear #9\)"):
        load_torch_weights(nnumba.build("lenet"), npz)


def test_torch_pickles_are_refused_with_the_conversion(tmp_path):
    sd = lenet_torch().state_dict()
    for name in ("lenet.pth", "disguised.npz"):
        torch.save(sd, tmp_path / name)
        with pytest.raises(WeightsError, match="never unpickles") as err:
            load_torch_weights(nnumba.build("lenet"), tmp_path / name)
        assert "safetensors.torch.save_file(torch.load(" in str(err.value)


def test_object_arrays_are_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(WeightsError, match="never unpickles"):
        load_torch_weights(nnumba.build("lenet"), tmp_path / "obj.npz")


def test_nnumba_npz_loads_by_its_own_names(tmp_path):
    model = nnumba.build("lenet", seed=3)
    path = nnumba.save(model, tmp_path / "lenet.npz")
    twin = load_torch_weights(nnumba.build("lenet", seed=4), path)
    for (name, a), (_, b) in zip(model.params(), twin.params()):
        assert np.array_equal(a.value, b.value), name
