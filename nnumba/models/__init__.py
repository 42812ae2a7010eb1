"""Named models larger than the zoo's one-liners, one module each, each a plugin
registering its factory through ``nnumba_register_models`` (see registry.BUILTIN_PLUGINS)."""
