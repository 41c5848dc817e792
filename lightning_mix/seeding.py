"""Counter-based seeds: the mixing randomness of every step is a pure function of (seed, rank, step).

Re-seeding a generator from a hash of the step index, rather than carrying its state from step to step, makes
the stream of every rank recoverable from three integers. A checkpoint (written by rank 0 only) therefore
restores every rank's stream, and nothing depends on how many numbers earlier steps drew.
"""

from __future__ import annotations

__all__ = ["step_seed"]

_M64 = (1 << 64) - 1


def _splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of one step on one rank: a SplitMix64 hash of the three numbers, in ``[0, 2**64)``.

    The result never equals ``seed`` itself, so a generator seeded with it does not replay the stream of
    PyTorch's global generator seeded with the same number.

    Args:
        seed: the base seed (any int; taken modulo 2**64).
        rank: the process's global rank.
        step: the index of the training batch.

    Example:
        >>> step_seed(0, 0, 0) == step_seed(0, 0, 0), step_seed(0, 0, 1) != step_seed(0, 1, 0)
        (True, True)
        >>> 0 <= step_seed(-1, 3, 10**6) < 2**64
        True
    """
    return _splitmix64(_splitmix64(_splitmix64(seed & _M64) ^ rank) ^ step)
