// One launch per optimizer step over the whole flat parameter buffer.
//
// In NumPy an Adam step is a dozen array operations, each a full pass over
// parameters, gradients and state: ~30 reads and writes per parameter. Here each
// thread loads its parameter, gradient and state once, does the whole update in
// registers, and stores the results: 4-5 memory accesses per parameter, which is
// all the step needs, so it runs at the card's memory bandwidth.
//
// Each kernel mirrors the `_update` of its class in nnhp/optim.py operation for
// operation (see the formulas there); flags arrive as ints, rates as `real`, in the
// order nnhp/fused/shared.py builds them.
#include "common.cuh"

// g + lambda theta (coupled weight decay, L2 folded into the gradient)
__device__ __forceinline__ real decayed(real param, real grad, real weight_decay, int use_decay) {
    return use_decay ? param * weight_decay + grad : grad;
}

extern "C" __global__ void sgd_update(long long n, real* param, const real* grad, real* momentum_buffer,
                                      real lr, real momentum, real one_minus_dampening, real weight_decay,
                                      int use_decay, int use_momentum, int first_step, int undamped,
                                      int nesterov) {
    GRID_STRIDE_LOOP(i, n) {
        real g = decayed(param[i], grad[i], weight_decay, use_decay);
        if (use_momentum) {
            real buf = first_step ? g
                     : undamped ? momentum_buffer[i] * momentum + g
                                : momentum_buffer[i] * momentum + g * one_minus_dampening;
            momentum_buffer[i] = buf;
            g = nesterov ? buf * momentum + g : buf;
        }
        param[i] -= g * lr;
    }
}

extern "C" __global__ void adagrad_update(long long n, real* param, const real* grad, real* total,
                                          real lr, real eps, real weight_decay, int use_decay) {
    GRID_STRIDE_LOOP(i, n) {
        real g = decayed(param[i], grad[i], weight_decay, use_decay);
        real s = total[i] + g * g;
        total[i] = s;
        param[i] -= g / (nn_sqrt(s) + eps) * lr;
    }
}

extern "C" __global__ void adadelta_update(long long n, real* param, const real* grad, real* square_avg,
                                           real* acc_delta, real lr, real rho, real one_minus_rho, real eps,
                                           real weight_decay, int use_decay) {
    GRID_STRIDE_LOOP(i, n) {
        real g = decayed(param[i], grad[i], weight_decay, use_decay);
        real v = square_avg[i] * rho + g * g * one_minus_rho;
        square_avg[i] = v;
        real delta = nn_sqrt(acc_delta[i] + eps) / nn_sqrt(v + eps) * g;
        acc_delta[i] = acc_delta[i] * rho + delta * delta * one_minus_rho;
        param[i] -= delta * lr;
    }
}

extern "C" __global__ void rmsprop_update(long long n, real* param, const real* grad, real* square_avg,
                                          real* grad_avg, real* momentum_buffer, real lr, real alpha,
                                          real one_minus_alpha, real eps, real momentum, real weight_decay,
                                          int use_decay, int centered, int use_momentum) {
    GRID_STRIDE_LOOP(i, n) {
        real g = decayed(param[i], grad[i], weight_decay, use_decay);
        real v = square_avg[i] * alpha + g * g * one_minus_alpha;
        square_avg[i] = v;
        if (centered) {
            real mean = grad_avg[i] + (g - grad_avg[i]) * one_minus_alpha;
            grad_avg[i] = mean;
            v = v - mean * mean;
        }
        real step = g / (nn_sqrt(v) + eps);
        if (use_momentum) {
            real buf = momentum_buffer[i] * momentum + step;
            momentum_buffer[i] = buf;
            step = buf;
        }
        param[i] -= step * lr;
    }
}

// Adam and AdamW: theta -= step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps),
// step_size = lr / (1 - beta1^t); decoupled: theta *= 1 - lr lambda first.
extern "C" __global__ void adam_update(long long n, real* param, const real* grad, real* exp_avg,
                                       real* exp_avg_sq, real* max_exp_avg_sq, real step_size,
                                       real bias_correction2_sqrt, real eps, real beta1, real one_minus_beta1,
                                       real beta2, real one_minus_beta2, real weight_decay, int use_decay,
                                       real decay_factor, int decoupled, int amsgrad) {
    GRID_STRIDE_LOOP(i, n) {
        real p = param[i];
        real g;
        if (decoupled) {
            if (use_decay) p = p * decay_factor;
            g = grad[i];
        } else {
            g = decayed(p, grad[i], weight_decay, use_decay);
        }
        real m = exp_avg[i] * beta1 + g * one_minus_beta1;
        exp_avg[i] = m;
        real v = exp_avg_sq[i] * beta2 + g * g * one_minus_beta2;
        exp_avg_sq[i] = v;
        if (amsgrad) {
            if (max_exp_avg_sq[i] > v) v = max_exp_avg_sq[i];
            max_exp_avg_sq[i] = v;
        }
        param[i] = p - m / (nn_sqrt(v) / bias_correction2_sqrt + eps) * step_size;
    }
}
