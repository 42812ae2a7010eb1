"""The hooks a plugin implements. Built-ins use exactly these hooks too.

A plugin is any module or object with functions named like the hooks below and
decorated with ``nnumba.hookimpl``. Third-party packages expose it through the
entry-point group ``nnumba``::

    [project.entry-points.nnumba]
    my_layers = "my_package.plugin"

Each hook takes no argument and returns a dict ``{name: thing}``; a plugin
implements only the hooks it needs. docs/plugins.md is the author's guide, with
a worked plugin; :mod:`nnumba.registry` states the rules: built-ins win a name
clash, every entry is also reachable as ``PLUGIN:NAME`` (PLUGIN: the entry-point
name), a name two plugins claim is ambiguous, and a plugin that fails to import
or whose hook raises or returns anything else is skipped with a warning.
"""
import pluggy

PROJECT = "nnumba"
hookspec = pluggy.HookspecMarker(PROJECT)


class _Hookimpl(pluggy.HookimplMarker):
    """The decorator of a plugin's hook functions (pluggy's marker for nnumba; its
    own docstring would say to instantiate it, which ``nnumba.hookimpl`` already is)::

        @nnumba.hookimpl
        def nnumba_register_layers():
            return {"MyLayer": MyLayer}

    docs/plugins.md is the author's guide."""


hookimpl = _Hookimpl(PROJECT)


@hookspec
def nnumba_register_layers():
    """Return ``{type_name: LayerClass}`` for the layers this plugin provides.

    ``type_name`` is what a model spec uses in ``{"type": type_name, ...}``.
    Each class subclasses :class:`nnumba.Layer` (the contract: the docstring of
    :mod:`nnumba.layers.contract`) and lists at least one entry in its
    ``examples`` for the conformance kit (:func:`nnumba.testing.check_all`).
    """


@hookspec
def nnumba_register_losses():
    """Return ``{name: LossClass}`` for the losses this plugin provides.

    Each class subclasses :class:`nnumba.Loss` (the contract: the docstring of
    :mod:`nnumba.losses`) and lists ``examples`` for
    :func:`nnumba.testing.check_loss`.
    """


@hookspec
def nnumba_register_models():
    """Return ``{name: NamedModel}``: named models (:class:`nnumba.models.NamedModel`).

    ``NamedModel(build, input_shape, train_defaults, description)``:
    ``build(**options)`` returns the model's spec (a JSON-serialisable list of
    layer dicts), its keyword arguments being the model's options
    (``nnumba.build(name, **options)``, ``nnumba train --model NAME
    --model-option key=value``); ``input_shape`` is the per-sample input it is
    built for, or a function of the options returning it; ``train_defaults`` the
    settings ``nnumba train`` starts from (epochs, lr, momentum, batch_size, loss;
    a missing one takes nnumba's fallback). A plain ``build`` function is accepted
    too: no input shape, the fallback settings."""


@hookspec
def nnumba_register_datasets():
    """Return ``{name: loader}``, where ``loader(root=None, download=False)``
    returns a :class:`nnumba.data.Dataset` (its docstring has the contract:
    fields, dtypes, and what ``root`` and ``download`` mean)."""


@hookspec
def nnumba_register_devices():
    """Return ``{name: device}`` for the compute devices this plugin provides:
    instances of a :class:`nnumba.device.Device` subclass, each naming a kernel
    set (a module exporting :data:`nnumba.kernels.KERNELS`). The CPU and CUDA
    are built in."""
