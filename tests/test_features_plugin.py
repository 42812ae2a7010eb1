"""The nnumba-features plugin: registered through its entry point, conformant, and
each feature map equal to its closed form or an independent numpy reference."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

nnumba_features = pytest.importorskip(
    "nnumba_features", reason="the nnumba-features plugin is not installed: "
                              "pip install -e plugins/nnumba-features")

from nnumba import Sequential, SGDTrainer, io, testing  # noqa: E402
from nnumba.errors import NoGradientError, ShapeError  # noqa: E402
from nnumba.layers import Linear  # noqa: E402
from nnumba.losses import CrossEntropy  # noqa: E402
from nnumba.registry import get_layer  # noqa: E402
from nnumba_features import (HOG, PolynomialFeatures, Radius, RandomPairProducts,  # noqa: E402
                             XorProduct)
from nnumba_features.plugin import LAYERS  # noqa: E402

NAMES = [cls.type_name for cls in LAYERS]


def test_plugins_command_lists_the_layers_with_their_distribution():
    out = subprocess.run([sys.executable, "-m", "nnumba", "plugins", "--json"],
                         capture_output=True, text=True, check=True).stdout
    layers = {e["name"]: e for e in json.loads(out)["layer"]}
    for name in NAMES:
        assert name in layers, f"{name} missing from `nnumba plugins`"
        assert layers[name]["distribution"].startswith("nnumba-features "), layers[name]
        assert layers[name]["plugin"] == "features"


@pytest.mark.parametrize("cls", LAYERS, ids=NAMES)
def test_conformance_kit(cls):
    assert get_layer(cls.type_name) is cls  # found through the registry, as a spec would
    testing.check_all(cls)


def _f64(a):
    return np.ascontiguousarray(a, dtype=np.float64)


def test_xor_product_is_the_lectures_phi():
    x = _f64([[0, 0], [0, 1], [1, 0], [1, 1], [2.5, -3]])
    y = XorProduct().astype(np.float64).forward(x)
    np.testing.assert_array_equal(y, np.column_stack([x, x[:, 0] * x[:, 1]]))


@pytest.mark.parametrize("degree", [0, 1, 3, 7])
def test_polynomial_features_in_one_dimension_are_powers(degree):
    x = np.linspace(-1.5, 1.5, 9)
    y = PolynomialFeatures(1, degree).astype(np.float64).forward(_f64(x[:, None]))
    np.testing.assert_allclose(y, np.vander(x, degree + 1, increasing=True), rtol=1e-13)


def test_polynomial_features_count_every_monomial_once():
    for features, degree in [(2, 3), (3, 4), (5, 2)]:
        layer = PolynomialFeatures(features, degree)
        assert layer.output_shape((features,)) == (math.comb(features + degree, degree),)
        assert len({tuple(p) for p in layer.powers}) == len(layer.powers)
    assert PolynomialFeatures(3, 2, include_bias=False).output_shape((3,)) == (9,)


def test_random_pair_products_are_seeded_distinct_pairs():
    a, b = RandomPairProducts(50, 200, seed=7), RandomPairProducts(50, 200, seed=7)
    np.testing.assert_array_equal(a.first, b.first)
    np.testing.assert_array_equal(a.second, b.second)
    assert np.all(a.first != a.second)
    assert not np.array_equal(a.first, RandomPairProducts(50, 200, seed=8).first)
    # Every feature gets picked (uniform draws), none out of range.
    assert a.first.min() >= 0 and a.second.max() < 50
    x = np.random.default_rng(0).normal(size=(4, 50))
    y = a.astype(np.float64).forward(x)
    np.testing.assert_array_equal(y[:, :50], x)
    np.testing.assert_allclose(y[:, 50:], x[:, a.first] * x[:, a.second], rtol=1e-15)


def test_random_pair_products_survive_save_and_load(tmp_path):
    model = Sequential(RandomPairProducts(6, 9, seed=11), Linear(15, 1), seed=0)
    x = np.random.default_rng(1).normal(size=(3, 6)).astype(np.float32)
    twin = io.load_model(io.save(model, tmp_path / "m.npz"))
    assert twin.spec()[0] == {"type": "RandomPairProducts", "in_features": 6,
                              "num_products": 9, "seed": 11, "keep_input": True}
    np.testing.assert_array_equal(twin.forward(x), model.forward(x))


def test_radius_and_its_gradient():
    x = _f64([[3, 4], [0, 0], [-1, 0]])
    layer = Radius(2).astype(np.float64)
    np.testing.assert_array_equal(layer.forward(x)[:, 0], [5, 0, 1])
    dx = layer.backward(np.ones((3, 1)))
    np.testing.assert_allclose(dx, [[0.6, 0.8], [0, 0], [-1, 0]])  # 0 at the kink


def _image(f, size=12):
    """An image whose pixel (row r, column c) is f(r, c)."""
    r, c = np.mgrid[0:size, 0:size].astype(np.float64)
    return f(r, c)[None, None]


def _centre_cell(image, bins=9, normalize=False):
    """The histogram of the middle 4x4 cell of a 12x12 image, away from the border."""
    layer = HOG(12, 12, 4, bins, normalize).astype(np.float64)
    return layer.forward(image).reshape(3, 3, bins)[1, 1]


def test_hog_closed_forms():
    # Brightness rising to the right: horizontal gradient, 0 degrees, bin 0 only.
    h = _centre_cell(_image(lambda r, c: c))
    assert h[0] == pytest.approx(16 * 2) and np.all(h[1:] == 0)  # 16 pixels, |g| = 2
    # Rising downwards: 90 degrees = bin 4.5, split half and half between bins 4 and 5.
    h = _centre_cell(_image(lambda r, c: r))
    assert h[4] == pytest.approx(16) and h[5] == pytest.approx(16)
    assert np.all(np.delete(h, [4, 5]) == 0)
    # A 45-degree ramp: position 45 / 20 = 2.25, so 3/4 to bin 2 and 1/4 to bin 3.
    h = _centre_cell(_image(lambda r, c: r + c))
    assert h[2] == pytest.approx(0.75 * 16 * np.sqrt(8))
    assert h[3] == pytest.approx(0.25 * 16 * np.sqrt(8))
    assert np.all(np.delete(h, [2, 3]) == 0)
    # A ramp falling to the right is the same edge: orientations are unsigned.
    np.testing.assert_allclose(_centre_cell(_image(lambda r, c: -c)), _centre_cell(
        _image(lambda r, c: c)))
    # Normalised histograms have unit norm (up to eps); a blank image gives 0.
    h = _centre_cell(_image(lambda r, c: (r - 3) ** 2 + c), normalize=True)
    assert np.linalg.norm(h) == pytest.approx(1, abs=1e-6)
    assert np.all(HOG(12, 12, 4).forward(np.zeros((1, 1, 12, 12), np.float32)) == 0)


def hog_reference(image, cell, bins):
    """Plain numpy HOG, written apart from the kernel: centred differences (0 on the
    border), unsigned angles, linear votes between the two nearest bin centres."""
    gx, gy = np.zeros_like(image), np.zeros_like(image)
    gx[:, 1:-1] = image[:, 2:] - image[:, :-2]
    gy[1:-1, :] = image[2:, :] - image[:-2, :]
    magnitude = np.hypot(gx, gy)
    position = np.mod(np.arctan2(gy, gx), np.pi) / (np.pi / bins)
    low = np.floor(position).astype(int)
    frac = position - low
    cells = image.shape[0] // cell, image.shape[1] // cell
    out = np.zeros(cells + (bins,))
    for r in range(cells[0] * cell):
        for c in range(cells[1] * cell):
            out[r // cell, c // cell, low[r, c] % bins] += magnitude[r, c] * (1 - frac[r, c])
            out[r // cell, c // cell, (low[r, c] + 1) % bins] += magnitude[r, c] * frac[r, c]
    return out


def test_hog_matches_a_numpy_reference_on_digits():
    from nnumba.data import load_dataset
    digits = load_dataset("mnist-5k").x_train[:6].astype(np.float64)
    layer = HOG(28, 28, cell_size=8, bins=9, normalize=False).astype(np.float64)
    got = layer.forward(digits).reshape(6, 3, 3, 9)
    assert layer.output_shape((1, 28, 28)) == (81,)  # the lecture's 8x8 cells, 9 bins
    for image, h in zip(digits, got):
        np.testing.assert_allclose(h, hog_reference(image[0], 8, 9), rtol=1e-10, atol=1e-12)


def test_hog_has_no_gradient_but_trains_as_a_first_layer():
    layer = HOG(8, 8, 4)
    layer.forward(np.ones((2, 1, 8, 8), np.float32))
    with pytest.raises(NoGradientError, match="HOG"):
        layer.backward(np.ones((2, 36), np.float32))
    # First in a model it needs no input gradient, so training goes through.
    rng = np.random.default_rng(0)
    x = rng.random((20, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    model = Sequential(HOG(8, 8, 4), Linear(36, 3), seed=0)
    history = SGDTrainer(model, CrossEntropy(), lr=0.1, batch_size=10).fit(x, y, epochs=2)
    assert len(history.epochs) == 2


@pytest.mark.parametrize("make", [
    lambda: PolynomialFeatures(0, 2), lambda: PolynomialFeatures(2, -1),
    lambda: PolynomialFeatures(1, 0, include_bias=False),
    lambda: RandomPairProducts(1, 3), lambda: RandomPairProducts(4, 0, keep_input=False),
    lambda: Radius(0), lambda: HOG(28, 28, cell_size=0), lambda: HOG(4, 4, cell_size=8),
    lambda: HOG(bins=1), lambda: HOG(eps=0.0),
    # what a JSON spec can carry: text for a flag, a float for a count or a seed
    lambda: PolynomialFeatures(2, 2, include_bias="false"), lambda: Radius(float("inf")),
    lambda: RandomPairProducts(4, 2, seed=1.5), lambda: RandomPairProducts(4, 2, keep_input=1)])
def test_bad_settings_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_wrong_image_size_names_the_layer():
    with pytest.raises(ShapeError, match="HOG"):
        HOG(28, 28).forward(np.zeros((1, 1, 27, 28), np.float32))
