"""Philox4x32-10: random numbers you can compute from an index, on any device.

An ordinary generator is a sequence: to know draw 1,000,000 you must make the
999,999 before it, in order. A *counter-based* generator is a function instead::

    bits = philox(counter, key)

Same counter and key, same bits, on every machine. That is what dropout needs to
give the same mask on NumPy, numba and CUDA: element ``i`` of a mask draws from
counter ``i // 4`` (one call yields four 32-bit words), keyed by a 64-bit number the
layer takes from the model's seeded generator once per training step. Nothing
sequential is shared between threads, so a GPU thread or a numba loop iteration
computes its own elements, and the mask need not even be stored: backward can
recompute it from the key.

Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as
1, 2, 3", SC 2011) runs 10 rounds of::

    (hi0, lo0) = M0 * c0          64-bit product split in two 32-bit halves
    (hi1, lo1) = M1 * c2
    c = (hi1 ^ c1 ^ k0,  lo1,  hi0 ^ c3 ^ k1,  lo0)
    k = (k0 + W0, k1 + W1)        (mod 2**32; the "Weyl" key schedule)

with M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85. The
tests check it against the published known-answer vectors of Random123.

The mask rule, shared by all three implementations (``nnhp/fused/numba_kernels.py``,
``kernels/dropout.cu``)::

    word_i = philox((i // 4 mod 2**32, i // 2**34, 0, 0), (key mod 2**32, key // 2**32))[i % 4]
    keep_i = word_i < threshold,   threshold = floor(keep_prob * 2**32)

so each element is kept with probability ``keep_prob`` (to within 2**-32).
"""
from __future__ import annotations

import numpy

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
ROUNDS = 10

_LOW32 = numpy.uint64(0xFFFFFFFF)
_SHIFT32 = numpy.uint64(32)


def philox4x32(counters, key) -> numpy.ndarray:
    """Philox4x32-10 of each row of ``counters`` ((n, 4) uint32-valued) under ``key``
    (a pair of 32-bit ints). Returns (n, 4) uint32. Vectorized over rows."""
    c = numpy.asarray(counters, dtype=numpy.uint64)
    c0, c1, c2, c3 = (c[:, j].copy() for j in range(4))
    k0, k1 = int(key[0]) & 0xFFFFFFFF, int(key[1]) & 0xFFFFFFFF
    m0, m1 = numpy.uint64(PHILOX_M0), numpy.uint64(PHILOX_M1)
    for round_index in range(ROUNDS):
        if round_index:
            k0 = (k0 + PHILOX_W0) & 0xFFFFFFFF
            k1 = (k1 + PHILOX_W1) & 0xFFFFFFFF
        # uint64 products of two 32-bit numbers are exact: the 32-bit mulhilo.
        product0 = c0 * m0
        product1 = c2 * m1
        c0, c1, c2, c3 = ((product1 >> _SHIFT32) ^ c1 ^ numpy.uint64(k0), product1 & _LOW32,
                          (product0 >> _SHIFT32) ^ c3 ^ numpy.uint64(k1), product0 & _LOW32)
    return numpy.stack([c0, c1, c2, c3], axis=1).astype(numpy.uint32)


def split_key(key: int) -> tuple[int, int]:
    """A 64-bit key as Philox's two 32-bit key words (low, high)."""
    key = int(key)
    return key & 0xFFFFFFFF, (key >> 32) & 0xFFFFFFFF


def keep_threshold(keep_prob: float) -> int:
    """The 32-bit threshold T with P(word < T) = keep_prob (to within 2**-32)."""
    if not 0.0 < keep_prob <= 1.0:
        raise ValueError(f"keep_prob must be in (0, 1]; got {keep_prob!r}")
    return min(int(keep_prob * 2.0 ** 32), 0xFFFFFFFF)


def random_words(key: int, n: int) -> numpy.ndarray:
    """The first ``n`` 32-bit words of the stream keyed by ``key`` (word i from counter i // 4)."""
    n_blocks = -(-int(n) // 4)
    block = numpy.arange(n_blocks, dtype=numpy.uint64)
    counters = numpy.zeros((n_blocks, 4), dtype=numpy.uint64)
    counters[:, 0] = block & _LOW32
    counters[:, 1] = block >> _SHIFT32   # (i // 4) // 2**32 = i // 2**34
    return philox4x32(counters, split_key(key)).reshape(-1)[:n]


def keep_mask(key: int, shape, keep_prob: float) -> numpy.ndarray:
    """Boolean dropout keep-mask of ``shape``: element i kept when its word < threshold."""
    n = int(numpy.prod(shape))
    return (random_words(key, n) < numpy.uint32(keep_threshold(keep_prob))).reshape(shape)


def new_key(rng) -> int:
    """A fresh 64-bit key drawn from a NumPy generator (the model's, so seeds reproduce)."""
    return int(rng.integers(0, 2 ** 64, dtype=numpy.uint64))
