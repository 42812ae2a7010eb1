"""The hooks a plugin implements. Built-ins use exactly these hooks too.

A plugin is any module or object with functions named like the hooks below and
decorated with ``nnumba.hookimpl``. Third-party packages expose it through the
entry-point group ``nnumba``::

    [project.entry-points.nnumba]
    my_layers = "my_package.plugin"

Each hook returns a mapping ``{name: thing}``; names must be unique across
plugins (the registry names both plugins when two claim one name).
"""
import pluggy

PROJECT = "nnumba"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def nnumba_register_layers():
    """Return ``{type_name: LayerClass}`` for the layers this plugin provides.

    ``type_name`` is what a model spec uses in ``{"type": type_name, ...}``.
    Each class subclasses :class:`nnumba.layers.Layer` and lists at least one
    entry in its ``examples`` so the conformance kit can check it.
    """


@hookspec
def nnumba_register_losses():
    """Return ``{name: LossClass}`` for the losses this plugin provides.

    Each class subclasses :class:`nnumba.losses.Loss`.
    """


@hookspec
def nnumba_register_models():
    """Return ``{name: NamedModel}``: named models (:class:`nnumba.models.NamedModel`).

    ``NamedModel(build, input_shape, train_defaults)``: ``build(**options)`` returns
    the model's spec (a JSON-serialisable list of layer dicts); ``input_shape`` is the
    per-sample input it is built for; ``train_defaults`` the settings ``nnumba train``
    starts from. A plain ``build`` function is accepted too (no input shape, the
    fallback settings)."""


@hookspec
def nnumba_register_datasets():
    """Return ``{name: loader}``, where ``loader(root=None, download=False)``
    returns a :class:`nnumba.data.Dataset`."""


@hookspec
def nnumba_register_devices():
    """Return ``{name: device}`` for the compute devices this plugin provides
    (objects with ``available()`` and ``describe()``). The CPU is built in."""
