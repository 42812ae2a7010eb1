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
