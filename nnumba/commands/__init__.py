"""Sub-commands of the ``nnumba`` command line, one module each."""
