// Shared by every kernel file (nnhp/fused/cuda.py pastes it in place of the #include).
//
// Each .cu file is compiled twice, with -DREAL=float and -DREAL=double: the kernels
// are written once for `real` and exist for both dtypes under the same names.
// No standard headers: NVRTC, which cupy.RawModule compiles with, has none.
#pragma once

#ifndef REAL
#define REAL float
#endif
typedef REAL real;

// float and double overloads, so the kernels can call one name for either type.
__device__ __forceinline__ float nn_exp(float x) { return expf(x); }
__device__ __forceinline__ double nn_exp(double x) { return exp(x); }
__device__ __forceinline__ float nn_expm1(float x) { return expm1f(x); }
__device__ __forceinline__ double nn_expm1(double x) { return expm1(x); }
__device__ __forceinline__ float nn_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double nn_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float nn_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double nn_sqrt(double x) { return sqrt(x); }

// Every thread handles elements i, i + stride, i + 2 stride, ...: any n works with
// any launch size, and a modest grid still keeps every multiprocessor busy.
#define GRID_STRIDE_LOOP(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)
