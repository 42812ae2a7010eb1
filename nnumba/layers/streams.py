"""A layer's random stream for one MPI rank."""
import numpy as np


def rank_stream(gen: np.random.Generator, rank: int, size: int):
    """Reseed ``gen`` in place from its next draw and the rank: ranks, which share one
    seed, then draw independent numbers (no two drop the same units of their samples),
    and a run stays reproducible.  In place: the layer goes on drawing from the
    generator its ``random_generator()`` returns, whatever it keeps it in."""
    seeds = np.random.SeedSequence([int(gen.integers(2**63)), int(rank), int(size)])
    gen.bit_generator.state = type(gen.bit_generator)(seeds).state
