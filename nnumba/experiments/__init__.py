"""The lecture's experiments, each a small recipe that prints its table and draws its figures.

An experiment is a function ``recipe(out_dir=None, fast=False, **options)``
returning a :class:`Result`; ``fast=True`` shrinks it to test size. The
registry below lists them by name, in the lecture's order::

    from nnumba.experiments import run_experiment
    print(run_experiment("xor", out_dir="figures"))
"""
from .registry import EXPERIMENTS, Experiment, get_experiment, list_experiments, run_experiment
from .result import Result

__all__ = ["EXPERIMENTS", "Experiment", "Result", "get_experiment", "list_experiments",
           "run_experiment"]
