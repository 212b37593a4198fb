// Softmax + cross-entropy + its gradient in one pass over the logits.
//
// Separately, softmax, log, the picked log-probability and p - onehot are five or six
// kernels, each reading the (n, k) logits or probabilities again. Here one thread owns
// one row: max, sum of exponentials (accumulated in double), the row's loss and the
// gradient (p - t) / n, written once. One thread per row suits classifier outputs
// (k up to a few thousand); the batch supplies the parallelism.
#include "common.cuh"

// Shared by both target kinds: grad[row] = softmax(logits[row]); returns the row max
// and log sum exp(logits - max) through the pointers.
__device__ __forceinline__ void softmax_row(const real* logits, real* grad, long long k,
                                            real* row_max, double* log_sum_exp) {
    real m = logits[0];
    for (long long j = 1; j < k; ++j) m = logits[j] > m ? logits[j] : m;
    double total = 0.0;
    for (long long j = 0; j < k; ++j) {
        real e = nn_exp(logits[j] - m);
        grad[j] = e;
        total += (double)e;
    }
    for (long long j = 0; j < k; ++j) grad[j] = (real)((double)grad[j] / total);
    *row_max = m;
    *log_sum_exp = log(total);
}

// Integer labels: row loss = lse - (z_y - m); grad = (p - onehot(y)) * scale, scale = 1/n.
extern "C" __global__ void softmax_cross_entropy_labels(long long n, long long k, const real* logits,
                                                        const long long* labels, real* grad,
                                                        double* row_losses, real scale) {
    GRID_STRIDE_LOOP(row, n) {
        const real* z = logits + row * k;
        real* g = grad + row * k;
        real m; double lse;
        softmax_row(z, g, k, &m, &lse);
        long long label = labels[row];
        row_losses[row] = lse - (double)(z[label] - m);
        for (long long j = 0; j < k; ++j) g[j] = g[j] * scale;
        g[label] -= scale;
    }
}

// Target rows t (one-hot or probabilities): row loss = sum_j t_j (lse - (z_j - m)).
extern "C" __global__ void softmax_cross_entropy_targets(long long n, long long k, const real* logits,
                                                         const real* targets, real* grad,
                                                         double* row_losses, real scale) {
    GRID_STRIDE_LOOP(row, n) {
        const real* z = logits + row * k;
        const real* t = targets + row * k;
        real* g = grad + row * k;
        real m; double lse;
        softmax_row(z, g, k, &m, &lse);
        double loss = 0.0;
        for (long long j = 0; j < k; ++j) {
            loss += (lse - (double)(z[j] - m)) * (double)t[j];
            g[j] = g[j] * scale - t[j] * scale;
        }
        row_losses[row] = loss;
    }
}
