"""Bad settings of the feature layers are refused with nnumba's own errors, naming the
option and the value; sizes that cannot fit are refused before any work is done."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest

nnumba_features = pytest.importorskip(
    "nnumba_features", reason="the nnumba-features plugin is not installed: "
                              "pip install -e plugins/nnumba-features")

from nnumba import Sequential  # noqa: E402
from nnumba.errors import SpecError, TooLargeError  # noqa: E402
from nnumba_features import HOG, PolynomialFeatures, RandomPairProducts  # noqa: E402
from nnumba_features.layers import monomial_count, monomial_powers  # noqa: E402


# ---- HOG ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["false", "no", [], float("nan"), 0, 1, None, "true"])
def test_hog_normalize_must_be_a_flag(value):
    with pytest.raises(SpecError, match=r"HOG: normalize must be true or false, got"):
        HOG(8, 8, 4, normalize=value)
    with pytest.raises(SpecError, match=r"item #0 \(HOG\): normalize must be true or false"):
        Sequential.from_spec([{"type": "HOG", "height": 8, "width": 8, "cell_size": 4,
                               "normalize": value}])


@pytest.mark.parametrize("eps", [1e300, 1e20, 1e-30, 1e-19, 0.0, -1e-3, float("inf"),
                                 float("nan"), "a", "0.001", None, True, [1e-3]])
def test_hog_eps_must_square_to_a_normal_float32(eps):
    with pytest.raises(SpecError, match=r"HOG: eps must be a finite number in \[2e-19, "
                                        r"1e\+19\], got "):
        HOG(8, 8, 4, eps=eps)


def test_hog_spec_keeps_the_flag_it_was_given():
    model = Sequential.from_spec([{"type": "HOG", "height": 8, "width": 8, "cell_size": 4,
                                   "normalize": False, "eps": np.float64(0.5)}])
    spec = model.spec()[0]
    assert spec["normalize"] is False and spec["eps"] == 0.5
    json.dumps(spec)  # plain Python values: the spec saves as JSON


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps", [2e-19, 1e-3, 1e19])
def test_hog_normalises_by_the_norm_with_eps_at_both_ends_of_its_range(dtype, eps):
    """h / sqrt(||h||^2 + eps^2) computed in float64 from the raw histograms: neither
    all zero for a large eps nor NaN for a blank cell with a small one."""
    rng = np.random.default_rng(0)
    x = rng.random((3, 1, 8, 8)).astype(dtype)
    x[1] = 0.0  # a blank image: every cell's histogram is 0
    raw = HOG(8, 8, 4, normalize=False).astype(dtype).forward(x).astype(np.float64)
    got = HOG(8, 8, 4, eps=eps).astype(dtype).forward(x)
    cells = raw.reshape(3, 4, 9)
    want = cells / np.sqrt((cells ** 2).sum(axis=2, keepdims=True) + eps ** 2)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got.reshape(3, 4, 9), want,
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=0)
    assert np.all(got[1] == 0) and (got[[0, 2]] > 0).any(axis=1).all()


# ---- PolynomialFeatures ---------------------------------------------------------------

@pytest.mark.parametrize("features, degree, bias", [
    (1, 0, True), (1, 5, False), (2, 3, True), (3, 4, False), (5, 2, True), (4, 1, False),
    (7, 3, True)])
def test_monomials_are_scikit_learns(features, degree, bias):
    sklearn_preprocessing = pytest.importorskip("sklearn.preprocessing")
    theirs = sklearn_preprocessing.PolynomialFeatures(degree, include_bias=bias).fit(
        np.zeros((1, features))).powers_
    np.testing.assert_array_equal(monomial_powers(features, degree, bias), theirs)
    assert monomial_count(features, degree, bias) == len(theirs)


def test_many_monomials_of_one_input_are_listed_quickly():
    """Formerly each monomial was built by a Python loop over its degree: 10**8 hung."""
    start = time.perf_counter()
    layer = PolynomialFeatures(1, 10**6)
    assert time.perf_counter() - start < 20
    np.testing.assert_array_equal(layer.powers[:, 0], np.arange(10**6 + 1))


@pytest.mark.parametrize("features, degree", [(1000, 6), (10**6, 10**6), (2**63 - 1, 1),
                                              (2, 2**63 - 1), (2**40, 2**40)])
def test_too_many_monomials_are_refused_before_listing_them(features, degree):
    start = time.perf_counter()
    with pytest.raises(TooLargeError, match=rf"PolynomialFeatures: the monomials of degree "
                                            rf"<= {degree} in {features} input"):
        PolynomialFeatures(features, degree)
    with pytest.raises(TooLargeError, match=r"model spec item #0 \(PolynomialFeatures\)"):
        Sequential.from_spec([{"type": "PolynomialFeatures", "in_features": features,
                               "degree": degree}])
    assert time.perf_counter() - start < 5


def test_summary_of_a_huge_polynomial_spec_is_refused(tmp_path):
    """The fuzzer's spec: `nnumba summary` took 20 GB listing its 1.4e15 monomials."""
    spec = tmp_path / "poly.json"
    spec.write_text(json.dumps([{"type": "PolynomialFeatures", "in_features": 1000,
                                 "degree": 6}]))
    run = subprocess.run([sys.executable, "-m", "nnumba", "summary", str(spec)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "PolynomialFeatures" in run.stderr and "GB" in run.stderr, run.stderr


def test_count_is_the_binomial_coefficient():
    from math import comb
    for f in range(1, 12):
        for d in range(0, 12):
            assert monomial_count(f, d) == comb(f + d, d)
            assert monomial_count(f, d, include_bias=False) == comb(f + d, d) - 1
    assert monomial_count(10**6, 10**6, limit=10**9) == 10**9 + 1


@pytest.mark.parametrize("value", ["false", 0, 1, None, []])
def test_include_bias_is_checked_before_it_is_used(value):
    with pytest.raises(SpecError, match="include_bias must be true or false"):
        PolynomialFeatures(2, 0, include_bias=value)


# ---- RandomPairProducts ----------------------------------------------------------------

def test_too_many_random_pairs_are_refused_before_drawing():
    with pytest.raises(TooLargeError, match=r"RandomPairProducts: 100,000,000,000 random "
                                            r"pairs needs .* GB"):
        RandomPairProducts(4, 10**11)


def test_no_feature_at_all_is_a_spec_error():
    with pytest.raises(SpecError, match="no products and no input"):
        RandomPairProducts(4, 0, keep_input=False)
    with pytest.raises(SpecError, match="degree 0 without the bias"):
        PolynomialFeatures(3, 0, include_bias=False)
