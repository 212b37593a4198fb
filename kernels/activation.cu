// Activations, fused with the Dense layer's bias (forward) and with the incoming
// gradient (backward). Codes as in nnhp.fused.shared.ACTIVATION_CODES.
//
// Why fuse: out = f(x @ W + b) done as "add the bias" then "apply f" reads and writes
// the (n, units) activations twice; here each element is loaded once, gets its bias
// and its nonlinearity, and is stored once. Backward needs only the forward output:
// f'(z) can be written with out = f(z) for every activation below.
#include "common.cuh"

#define IDENTITY 0
#define RELU 1
#define LEAKY_RELU 2
#define ELU 3
#define TANH 4
#define SIGMOID 5

__device__ __forceinline__ real activate(real z, int kind, real param) {
    switch (kind) {
        case RELU: return z <= (real)0 ? (real)0 : z;                  // max(z, 0), NaN passes
        case LEAKY_RELU: { real s = param * z; return z >= s ? z : s; } // max(z, slope z)
        case ELU: return z > (real)0 ? z : nn_expm1(z) * param;        // alpha (e^z - 1)
        case TANH: return nn_tanh(z);
        case SIGMOID: return (nn_tanh(z * (real)0.5) + (real)1) * (real)0.5;  // no overflow
        default: return z;
    }
}

// f'(z) from out = f(z).
__device__ __forceinline__ real slope(real out, int kind, real param) {
    switch (kind) {
        case RELU: return out > (real)0 ? (real)1 : (real)0;
        case LEAKY_RELU: return out > (real)0 ? (real)1 : param;
        case ELU: return out > (real)0 ? (real)1 : out + param;
        case TANH: return (real)1 - out * out;
        case SIGMOID: return ((real)1 - out) * out;
        default: return (real)1;
    }
}

// out[i, j] = f(z[i, j] + bias[j]) for an (n_rows, n_cols) row-major z; out may be z.
extern "C" __global__ void bias_activation_forward(long long n, long long n_cols, const real* z,
                                                   const real* bias, real* out, int kind, real param) {
    GRID_STRIDE_LOOP(i, n) {
        out[i] = activate(z[i] + bias[i % n_cols], kind, param);
    }
}

// out = f(x), elementwise.
extern "C" __global__ void activation_forward(long long n, const real* x, real* out, int kind, real param) {
    GRID_STRIDE_LOOP(i, n) {
        out[i] = activate(x[i], kind, param);
    }
}

// grad_in = grad_out * f'(z).
extern "C" __global__ void activation_backward(long long n, const real* grad_out, const real* out,
                                               real* grad_in, int kind, real param) {
    GRID_STRIDE_LOOP(i, n) {
        grad_in[i] = grad_out[i] * slope(out[i], kind, param);
    }
}
