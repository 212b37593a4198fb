// Inverted dropout with a counter-based random generator (Philox4x32-10, the
// function of nnhp/philox.py): element i is kept when word i % 4 of
// philox(counter = (i / 4, i / 2^34, 0, 0), key) is below `threshold`.
//
// No generator state, no stored mask: a thread computes its element's random word
// from (key, i) alone, and backward applies the same function with the same key to
// the gradient. NumPy, numba and this kernel produce the same mask for one key.
#include "common.cuh"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

__device__ __forceinline__ void philox4x32_10(unsigned int c[4], unsigned int k0, unsigned int k1) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) { k0 += PHILOX_W0; k1 += PHILOX_W1; }      // Weyl key schedule, mod 2^32
        unsigned int hi0 = __umulhi(PHILOX_M0, c[0]), lo0 = PHILOX_M0 * c[0];
        unsigned int hi1 = __umulhi(PHILOX_M1, c[2]), lo1 = PHILOX_M1 * c[2];
        unsigned int next0 = hi1 ^ c[1] ^ k0, next2 = hi0 ^ c[3] ^ k1;
        c[0] = next0; c[1] = lo1; c[2] = next2; c[3] = lo0;
    }
}

// out[i] = x[i] * scale if kept else 0; scale = 1 / keep_prob. One thread per block of 4
// elements: one Philox call yields the four words.
extern "C" __global__ void dropout_apply(long long n, const real* x, real* out, unsigned int key0,
                                         unsigned int key1, unsigned int threshold, real scale) {
    long long n_blocks = (n + 3) / 4;
    GRID_STRIDE_LOOP(block, n_blocks) {
        unsigned int c[4] = {(unsigned int)(block & 0xFFFFFFFFll), (unsigned int)(block >> 32), 0u, 0u};
        philox4x32_10(c, key0, key1);
        for (int j = 0; j < 4; ++j) {
            long long i = block * 4 + j;
            if (i < n) out[i] = c[j] < threshold ? x[i] * scale : x[i] * (real)0;
        }
    }
}
