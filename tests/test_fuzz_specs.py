"""Fuzzing model specs: every registered layer type (the plugins' too, where installed)
with fields drawn from JSON-ish values, through Sequential.from_spec, summarize, the
CLI (summary and train) and a weights file's stored spec.

The outcome is a model or an nnumba error whose message is one line, never another
exception from inside (TypeError, KeyError, MemoryError, OverflowError, ...), never
a traceback or an exit code other than 0 or 2 from the CLI. A built model must be
what was asked (no size rounded, no flag read from a string) and agree with the
summary, which sizes the same spec without building it."""
import inspect
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnumba
from nnumba import Sequential
from nnumba.errors import NnumbaError, SpecError, TooLargeError
from nnumba.registry import get_layer, get_registry
from nnumba.summary import summarize

ENTRIES = get_registry().entries("layer")
NAMES = sorted(ENTRIES)
BUILTIN = {name for name, entry in ENTRIES.items() if entry.builtin}

SIZES = [0, 1, 2, 3, -1, 10**6, 10**12, 2**63, 10**30, 10**400]
FLOATS = [784.9, 784.0, 2.7, 0.5, 0.0, -0.0, 1.0, -2.5, 1e-300, 1e308, math.nan, math.inf,
          -math.inf]
STRINGS = ["", "3", "true", "abc", "Linear", "x" * 1000, "a\nb"]
SMALL = st.one_of(st.sampled_from([0, 1, 2, 3, -1]), st.sampled_from([0.5, 2.7, 3.0]),
                  st.none(), st.booleans())


def deep(n):
    value = 1
    for _ in range(n):
        value = [value]
    return value


#: What a JSON spec field can hold, the odd cases favoured.
VALUES = st.one_of(
    st.none(), st.booleans(), st.sampled_from(SIZES), st.sampled_from(FLOATS),
    st.sampled_from(STRINGS), st.lists(SMALL, max_size=4),
    st.dictionaries(st.sampled_from(["", "a", "type", "in_features"]), SMALL, max_size=2),
    st.sampled_from([deep(60), {"a": deep(40)}]))
#: Values close to what a field of each kind takes: the right kind, and near misses.
MISSES = [784.9, 784.0, 2.7, 3.0, math.nan, math.inf, True, False, None, "3"]
NEAR = {"size": st.one_of(st.sampled_from(SIZES), st.sampled_from(MISSES),
                          st.lists(st.sampled_from(SIZES + MISSES), min_size=1, max_size=3)),
        "number": st.sampled_from(FLOATS + SIZES + [True, None, "0.5", [0.5]]),
        "flag": st.sampled_from([True, False, 0, 1, 1.0, "true", "false", None, [True]])}
UNKNOWN = ["slope", "self", "type2", "", "kwargs", "__class__"]
#: Fields whose constructor or summary work grows with the value (PolynomialFeatures
#: lists every monomial; AdaptiveAvgPool2d.flops loops over every output bin): a huge
#: value hangs. Reported; they get small values here.
SLOW = {("PolynomialFeatures", "in_features"), ("PolynomialFeatures", "degree"),
        ("AdaptiveAvgPool2d", "output_size")}


def field_kinds(layer_class) -> dict:
    """{argument: "flag" | "number" | "size"}, from its default and the layer's examples."""
    seen = {}
    for name, p in inspect.signature(layer_class).parameters.items():
        if p.default is not p.empty and p.default is not None:
            seen.setdefault(name, []).append(p.default)
    for kwargs, _ in layer_class.examples:
        for name, value in kwargs.items():
            seen.setdefault(name, []).extend(value if isinstance(value, list) else [value])
    kinds = {}
    for name, values in seen.items():
        if all(isinstance(v, bool) for v in values):
            kinds[name] = "flag"
        elif any(isinstance(v, float) for v in values):
            kinds[name] = "number"
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            kinds[name] = "size"
    return kinds


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def accepted_as_asked(name, field, value) -> bool:
    """May a built layer have taken ``value`` for ``field``? Built-ins take exactly the
    type; plugins (with checks of their own) at least never round a size or take a
    non-finite number."""
    layer_class = get_layer(name)
    default = inspect.signature(layer_class).parameters[field].default
    if value is None and default is None:
        return True
    kind = field_kinds(layer_class).get(field)
    items = value if isinstance(value, list) else [value]
    if kind == "size":
        if name in BUILTIN:
            return all(_is_int(v) for v in items)
        return all(_is_int(v) or isinstance(v, float) and v.is_integer() for v in items)
    if kind == "number":
        finite = all(isinstance(v, int) or isinstance(v, float) and math.isfinite(v)
                     for v in items)
        return finite and (name not in BUILTIN or not isinstance(value, bool))
    if kind == "flag" and name in BUILTIN:
        return isinstance(value, bool)
    return True


@st.composite
def layer_items(draw, name):
    """A dict for layer ``name``: one of its examples with one or two fields replaced
    (near misses for the field's kind, or anything), removed, or added."""
    layer_class = get_layer(name)
    examples = [kwargs for kwargs, _ in layer_class.examples] or [{}]
    item = {"type": name, **draw(st.sampled_from(examples))}
    fields = list(inspect.signature(layer_class).parameters)
    kinds = field_kinds(layer_class)
    for _ in range(draw(st.integers(1, 2))):
        field = draw(st.sampled_from(fields)) if fields and draw(st.integers(0, 5)) \
            else draw(st.sampled_from(UNKNOWN))
        if draw(st.integers(0, 4)) == 0:
            item.pop(field, None)  # a required one missing, or a default taken
        elif (name, field) in SLOW:
            item[field] = draw(st.one_of(SMALL, st.lists(SMALL, max_size=3)))
        else:
            item[field] = draw(st.one_of(NEAR.get(kinds.get(field), VALUES), VALUES))
    return item


#: Items that are no layer dict: not a dict, no "type", a "type" that is not a name.
ODD_ITEMS = st.one_of(VALUES, st.fixed_dictionaries({"type": VALUES}),
                      st.fixed_dictionaries({"in_features": VALUES}))


def specs(name=None):
    """Specs whose first item is a layer ``name`` dict (any layer when None), then now
    and then a second item: any layer's, or no layer dict at all."""
    first = layer_items(name) if name else st.sampled_from(NAMES).flatmap(layer_items)
    rest = st.one_of(st.sampled_from(NAMES).flatmap(layer_items), ODD_ITEMS)
    return st.tuples(first, st.lists(rest, max_size=1)).map(lambda t: [t[0], *t[1]])


def one_line(exc):
    text = str(exc)
    assert text and "\n" not in text, repr(text)
    return text


def attempt(call):
    """(result, None) or (None, the nnumba error): any other exception fails the test."""
    try:
        return call(), None
    except NnumbaError as exc:
        one_line(exc)
        return None, exc


def sample_shape(model):
    """A per-sample input shape for the first layer: its own, 8 for a free axis."""
    want = model.layers[0].input_shape()
    return tuple(8 if w is None else w for w in want) if want is not None else (3, 8, 8)


def check_built(spec, model):
    """A model built from ``spec`` is what the spec asked, and rebuilds from its own spec."""
    for item, layer in zip(spec, model.layers):
        for field, value in item.items():
            if field != "type":
                assert accepted_as_asked(item["type"], field, value), (item, layer)
    assert Sequential.from_spec(model.spec()).spec() == model.spec()


def check_summary_agrees(spec, model):
    """summarize sizes the spec as the built model is: the same output shapes and
    parameter counts, or the same refusal of the input shape."""
    shape = sample_shape(model)
    try:
        model.output_shape(shape)  # the built model's own check of every layer
        expected, current = [], shape
        for layer in model.layers:
            current = tuple(layer.output_shape(current))
            expected.append(current)
    except NnumbaError:
        expected = None
    summary, error = attempt(lambda: summarize(spec, input_shape=shape))
    if expected is None:
        assert error is not None, (spec, shape)
        return
    if isinstance(error, TooLargeError):  # a plugin's size no array can have (2**63)
        return
    assert error is None, (spec, shape, error)
    assert [r.output_shape for r in summary.rows] == expected
    assert [r.params for r in summary.rows] == \
        [sum(p.value.size for p in layer.params().values()) for layer in model.layers]


def check_from_spec(spec):
    """A model that is what the spec asked and that summarize sizes alike, or an
    nnumba error that summarize gives too (unless it is about memory)."""
    model, error = attempt(lambda: Sequential.from_spec(spec))
    if model is not None:
        check_built(spec, model)
        check_summary_agrees(spec, model)
        return
    assert isinstance(error, (SpecError, TooLargeError)), repr(error)
    if isinstance(error, SpecError):
        # summarize builds the same layers (shapes only): the same refusal.
        _, summary_error = attempt(lambda: summarize(spec, input_shape=(3, 8, 8)))
        assert type(summary_error) is SpecError and str(summary_error) == str(error)
    else:  # too large to build; summarize sizes it, or refuses it as well
        attempt(lambda: summarize(spec, input_shape=(3, 8, 8)))


FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_from_spec_gives_a_model_or_an_nnumba_error(name, data):
    """Every layer type, built-in or from an installed plugin, its fields fuzzed."""
    check_from_spec(data.draw(specs(name)))


#: For every field of a kind: values that must never build a layer of the built-ins.
WRONG = {"size": [784.9, 784.0, 2.7, -1, math.nan, math.inf, -math.inf, True, False, None,
                  "3", "", {}, [1, 2, 3], [2.0, 2], deep(60), 2**63, 10**400],
         "number": [math.nan, math.inf, -math.inf, True, None, "0.5", [0.5], {}, 10**400],
         "flag": [0, 1, 1.0, "true", "false", None, [True], {}]}


@pytest.mark.parametrize("name", NAMES)
def test_every_field_refuses_the_wrong_kind(name):
    """Each field of each example, set to each wrong value of its kind: an nnumba
    error naming the field (built-ins), never a layer that took it silently."""
    layer_class = get_layer(name)
    for example, _ in layer_class.examples:
        for field, kind in field_kinds(layer_class).items():
            if (name, field) in SLOW:  # 784.0 monomials of degree 4 would never finish
                continue
            for value in WRONG[kind]:
                spec = [{"type": name, **example, field: value}]
                model, error = attempt(lambda: Sequential.from_spec(spec))
                if model is not None:
                    assert accepted_as_asked(name, field, value), spec
                    check_built(spec, model)
                elif name in BUILTIN:
                    assert isinstance(error, (SpecError, TooLargeError)), repr(error)
                    assert field in str(error) and name in str(error), str(error)


@FUZZ
@given(spec=st.one_of(st.lists(ODD_ITEMS, min_size=1, max_size=2), VALUES))
def test_odd_specs_are_spec_errors(spec):
    model, error = attempt(lambda: Sequential.from_spec(spec))
    assert model is None and isinstance(error, SpecError), repr(error)


@settings(FUZZ, max_examples=200)
@given(spec=specs())
def test_summarize_gives_a_summary_or_an_nnumba_error(spec):
    for shape in [(3, 8, 8), (5,), None]:
        summary, error = attempt(lambda: summarize(spec, input_shape=shape))
        if summary is not None:
            assert summary.params == sum(r.params for r in summary.rows) >= 0
            summary.format()
            json.dumps(summary.to_dict())


@settings(max_examples=100, deadline=None)
@given(spec=specs())
def test_spec_as_json_text(spec):
    """The JSON text of a spec (what a file holds) gives what the list gives."""
    try:
        raw = json.dumps(spec)
    except ValueError:  # an integer past the 4,300 digits str() allows
        return
    a, error_a = attempt(lambda: Sequential.from_spec(raw))
    b, error_b = attempt(lambda: Sequential.from_spec(json.loads(raw)))
    assert (a is None) == (b is None) and type(error_a) is type(error_b)


# ---- a stored spec, edited inside a weights file ----------------------------------------

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "model.npz"
    model = nnumba.build([{"type": "Linear", "in_features": 4, "out_features": 3},
                          {"type": "ReLU"}], seed=0)
    nnumba.save(model, path)
    return dict(np.load(path))


@settings(max_examples=100, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(spec=st.one_of(specs(), VALUES), dtype=st.sampled_from(["float32", "float64", 3]))
def test_load_model_with_an_edited_stored_spec(saved, tmp_path, spec, dtype):
    arrays = dict(saved)
    try:
        meta = json.dumps({"spec": spec, "dtype": dtype, "format": 1})
    except ValueError:
        return
    arrays["__nnumba_spec__"] = np.array(meta)
    path = tmp_path / "edited.npz"
    np.savez(path, **arrays)
    model, error = attempt(lambda: nnumba.load_model(path))
    if error is not None:
        assert str(path) in str(error)
    else:  # only a spec whose parameters match the stored arrays loads
        assert [n for n, _ in model.params()] == ["0.weight", "0.bias"]


# ---- the CLI, in a process of its own -------------------------------------------------

def cli(*args):
    return subprocess.run([sys.executable, "-m", "nnumba", *args], capture_output=True,
                          text=True, timeout=300)


def check_cli(out, command, path):
    """Exit 0, or 2 with one line naming the file; never a traceback."""
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode in (0, 2), (out.returncode, out.stderr)
    if out.returncode == 2:
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"nnumba {command}: error: "), lines
        assert str(path) in lines[0], lines[0]


CLI_FUZZ = settings(max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def spec_file(tmp_path, spec):
    """The spec written as JSON, or None where JSON cannot hold it (NaN and the like)."""
    path = tmp_path / "spec.json"
    try:
        path.write_text(json.dumps(spec))
    except ValueError:
        return None
    return path


@CLI_FUZZ
@given(spec=specs())
def test_cli_summary_on_fuzzed_specs(tmp_path, spec):
    path = spec_file(tmp_path, spec)
    if path is not None:
        check_cli(cli("summary", str(path)), "summary", path)


@CLI_FUZZ
@given(spec=specs())
def test_cli_train_on_fuzzed_specs(tmp_path, spec):
    path = spec_file(tmp_path, spec)
    if path is not None:
        check_cli(cli("train", "--model", str(path), "--epochs", "1", "--train-size", "100"),
                  "train", path)
