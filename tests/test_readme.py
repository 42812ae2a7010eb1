"""The README's library example runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_library_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "SGDTrainer" in b)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})
    assert (tmp_path / "mlp.npz").exists()


def test_every_built_in_layer_is_listed_with_the_arguments_it_takes():
    """The README's list of built-in layers against the registry (plugin trial 13
    had to read a saved spec to learn Conv2d's argument names)."""
    import inspect

    from nnumba.registry import BUILTIN_DISTRIBUTION, get_registry
    text = " ".join(README.read_text().split())
    table = get_registry()._table("layer")
    built_in = {n: e.obj for n, e in table.names.items() if e.distribution == BUILTIN_DISTRIBUTION}
    assert {"Linear", "Conv2d", "MaxPool2d", "Dropout"} <= set(built_in)
    for name, cls in sorted(built_in.items()):
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        shown = ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}"
                          for p in params)
        assert f"`{name}({shown})`" in text, name


def test_the_error_example_is_what_its_model_says():
    """The README quoted 'Linear #1 + ReLU #2: ...': a batch is checked layer by layer
    since the fused step's shape bookkeeping moved (docs round 32)."""
    import numpy as np
    import pytest

    import nnumba
    from nnumba.errors import ShapeError
    from nnumba.layers import Flatten, Linear, ReLU
    quoted = re.search(r"`ShapeError: (.*?)`", README.read_text()).group(1)
    model = nnumba.Sequential(Flatten(), Linear(784, 128), ReLU(), Linear(128, 10), seed=0)
    with pytest.raises(ShapeError) as info:
        model.forward(np.zeros((4, 783), np.float32))
    assert str(info.value) == quoted


def test_an_unknown_option_is_the_commands_error(capsys):
    """README: every command reports `nnumba COMMAND: error: ...`; an unknown option was
    the top-level parser's ('nnumba: error: unrecognized arguments')."""
    import pytest

    from nnumba.cli import main
    with pytest.raises(SystemExit) as info:
        main(["train", "--bogus"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("usage: nnumba train"), err
    assert "nnumba train: error: unrecognized arguments: --bogus" in err
