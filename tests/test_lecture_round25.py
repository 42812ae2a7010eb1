"""Lecture review 25: the second half of lecture-mlp.md (MLP ... AlexNet).

Each test failed at d56098a for the reason in its docstring and checks against an
independent reference (torch, the slide's own formula, numpy), never a stored number.
"""
import json

import numpy as np
import pytest


# --- F1: the closing slide. The lecture's listing feeds AlexNet the picture as it is
# (ToTensor on the opened image, no resize; the adaptive pool takes any size); the
# README's command resizes it to 224 x 224 (aspect ratio not kept), so other scores.

def test_classify_alexnet_as_the_listing_feeds_the_image_at_its_own_size(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    Image = pytest.importorskip("PIL.Image")
    nn = torch.nn
    from nnumba.cli import main

    class TorchAlexNet(nn.Module):  # torchvision.models.AlexNet, written out
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
                nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
                nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
                nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
                nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.classifier = nn.Sequential(
                nn.Dropout(), nn.Linear(9216, 4096), nn.ReLU(),
                nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    torch.manual_seed(0)
    model = TorchAlexNet().eval()
    np.savez(tmp_path / "alexnet.npz", **{k: v.numpy() for k, v in model.state_dict().items()})
    rng = np.random.default_rng(0)
    pixels = (np.kron(rng.random((30, 40, 3)), np.ones((10, 10, 1))) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")     # 300 x 400, not square

    # The lecture's listing, line by line (torch's std is unbiased).
    img = torch.from_numpy(np.asarray(Image.open(tmp_path / "photo.png"), np.float32) / 255)
    img = img.permute(2, 0, 1)
    img = img.view(1, img.size(0), img.size(1), img.size(2))
    img = 0.5 + 0.5 * (img - img.mean()) / img.std()
    with torch.no_grad():
        scores, indexes = model(img).view(-1).sort(descending=True)

    # The README's command for the slide: nnumba classify IMAGE --model alexnet --weights W
    # --size image (without it the image is resized to 224 x 224, as torchvision's
    # pretrained weights expect: other scores than the listing's)
    assert main(["classify", str(tmp_path / "photo.png"), "--model", "alexnet",
                 "--weights", str(tmp_path / "alexnet.npz"), "--top", "5", "--json",
                 "--size", "image"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["size"] == [300, 400]
    top = out["top"]
    assert [t["index"] for t in top] == indexes[:5].tolist(), \
        "top-5 classes differ from the listing's (the image was resized to 224 x 224)"
    np.testing.assert_allclose([t["score"] for t in top], scores[:5].numpy(), rtol=1e-4)


# --- F2: universal approximation. The slide's construction is
# sum_n alpha_n sigma(x - a_n) (1-D) and sum_m gamma_m sum_n alpha_n
# sigma(v_m . x + c_m - a_n) (D-D): every hidden unit's input weight is +1 (1-D) or
# v_m itself. The tables say so; the network has one unit sigma(a - x) per sine.

def test_universal_2d_network_has_only_the_slides_units_sigma_of_v_m_x_plus_c_m_minus_a_n():
    from nnumba.experiments import universal2d
    n = 9
    model = universal2d.network(n)
    w = model.layers[0].weight.value                       # (K, 2): the sines' units in turn
    per_sine = w.shape[0] // len(universal2d.V)            # N, or N + 1 if a fix adds one
    for m, v in enumerate(universal2d.V):
        rows = w[m * per_sine:(m + 1) * per_sine]
        assert np.allclose(rows, v[None, :]), \
            f"sine {m}: units with input weights other than v_m = {v}: {rows.tolist()}"
    # and it must still be the construction: within the slide's bound sum|gamma| h^2/8
    g = np.linspace(0, 1, 101)
    x = np.column_stack([a.ravel() for a in np.meshgrid(g, g)])
    psi = np.sin(x @ universal2d.V.T + universal2d.C) @ universal2d.GAMMA
    assert np.abs(model.predict(x)[:, 0] - psi).max() <= universal2d.bound(n) * (1 + 1e-9)


def test_universal_1d_interpolant_units_are_the_slides_sigma_of_x_minus_a_n():
    from nnumba.experiments import universal
    a = 6.5   # a half-width where sin(-A) != 0, as the 2-D experiment uses
    w, b, omega = universal.interpolant_units(9, a)
    used = np.abs(omega) > 0
    assert np.all(w[used] == 1.0), f"units of another form than sigma(x - a_n): w = {w}"
    x = np.linspace(-a, a, 2001)
    f = np.maximum(0, np.outer(x, w) + b) @ omega
    assert np.abs(f - np.interp(x, np.linspace(-a, a, 9), np.sin(np.linspace(-a, a, 9)))).max() \
        < 1e-12


# --- F3: the chain-rule figure draws the three layer Jacobians as colours with no
# colour scale and no numbers: their entries cannot be read.

def test_chain_rule_figure_layer_jacobians_are_readable(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from nnumba.experiments import chain_rule, figures
    drawn = []
    real = figures.figure_class

    def recording():
        cls = real()
        if cls is None:
            pytest.skip("no matplotlib figure class")

        def make(*args, **kwargs):
            fig = cls(*args, **kwargs)
            drawn.append(fig)
            return fig
        return make
    monkeypatch.setattr(figures, "figure_class", recording)
    chain_rule.run(out_dir=tmp_path)
    (fig,) = drawn
    for ax in fig.axes[:3]:                               # J_f1, J_f2, J_f3
        (image,) = ax.get_images()
        entries = image.get_array().size
        assert image.colorbar is not None or len(ax.texts) >= entries, \
            f"{ax.get_title()}: neither a colour bar nor its {entries} entries written"


# --- F4 (lecture24 G3, half done): the run-all page, which the README tells a student
# to open "for each slide", still ends at cnn-mnist: no pointer to the AlexNet slide.

def test_run_all_page_points_to_the_closing_alexnet_slide(tmp_path):
    from nnumba.experiments.report import write_report
    html_path, md_path = write_report(tmp_path, [], "nnumba experiment run all")
    for path in (html_path, md_path):
        text = path.read_text(encoding="utf-8")
        assert "nnumba classify" in text and "AlexNet" in text, path.name
