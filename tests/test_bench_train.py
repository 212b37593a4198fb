"""benchmarks/bench_train.py: the bookkeeping behind its GPU figures, and its --gpu mode.

The bytes an optimizer step must move, the theoretical memory bandwidth and the table
rows are plain arithmetic, pinned here without a GPU. ``--gpu`` on a machine without
one must say so and exit 0; on a machine with CuPy and a GPU (``-m gpu``; skipped
elsewhere) a ``--gpu --quick`` run must give a row for every engine and Adam's
bandwidth.
"""
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

from nnhp import optim
from nnhp.fused import shared

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_train.py"


def load_benchmark():
    """The benchmark as a module (it lives outside the package, so by path)."""
    spec = importlib.util.spec_from_file_location("bench_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_benchmark()
FLOPS = bench.exact_flops_per_sample(bench.SIZES)


def run_script(*args, timeout=120):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


# --- importing ------------------------------------------------------------------------------
def test_importing_the_benchmark_neither_reexecutes_nor_runs_anything():
    # As a script it re-executes itself without the OpenBLAS overrides; imported, it must
    # leave the importing process (here: a fresh interpreter) and its environment alone.
    code = (f"import importlib.util, os\n"
            f"spec = importlib.util.spec_from_file_location('bench_train', {str(SCRIPT)!r})\n"
            f"spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
            f"print('imported', os.environ.get('OPENBLAS_CORETYPE'))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OPENBLAS_CORETYPE": "Haswell"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported Haswell"


# --- bytes per optimizer step -----------------------------------------------------------------
# Counted by hand from kernels/optimizers.cu (a step after the first): every kernel reads
# param and grad and writes param; each state buffer it keeps is read and written once.
@pytest.mark.parametrize("optimizer, accesses", [
    (optim.SGD(lr=0.1), 3),                                            # p, g in; p out
    (optim.SGD(lr=0.1, momentum=0.9), 5),                              # + buffer in and out
    (optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1), 5),
    (optim.Adagrad(), 5),                                              # + sum
    (optim.Adadelta(), 7),                                             # + square_avg, acc_delta
    (optim.RMSprop(), 5),                                              # + square_avg
    (optim.RMSprop(centered=True), 7),                                 # + grad_avg
    (optim.RMSprop(centered=True, momentum=0.9), 9),                   # + momentum_buffer
    (optim.Adam(), 7),                                                 # + exp_avg, exp_avg_sq
    (optim.Adam(amsgrad=True), 9),                                     # + max_exp_avg_sq
    (optim.Adam(weight_decay=0.1), 7),                                 # coupled decay reads p anyway
    (optim.AdamW(), 7),
], ids=repr)
def test_bytes_per_element_count_the_kernels_reads_and_writes(optimizer, accesses):
    assert bench.optimizer_bytes_per_element(optimizer) == 4 * accesses
    assert bench.optimizer_bytes_per_element(optimizer, itemsize=8) == 8 * accesses


def test_adam_moves_seven_float32_values_per_element():
    assert bench.optimizer_bytes_per_element(optim.Adam(), 4) == 28


def test_every_bandwidth_configuration_has_a_fused_cuda_kernel():
    for label, class_name, options in bench.BANDWIDTH_CONFIGS:
        optimizer = getattr(optim, class_name)(**options)
        assert shared.has_kernel(optimizer), label
    labels = [label for label, _, _ in bench.BANDWIDTH_CONFIGS]
    assert labels == ["SGD", "SGD momentum", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW"]


# --- the device's bandwidth -------------------------------------------------------------------
def test_theoretical_bandwidth_is_double_data_rate_across_the_bus():
    # H100 SXM: 2619 MHz HBM3 on a 5120-bit bus, sold as 3.35 TB/s.
    assert bench.theoretical_bandwidth(2_619_000, 5120) == pytest.approx(3.352e12, rel=1e-3)
    # V100: 877 MHz HBM2 on 4096 bits, sold as 900 GB/s.
    assert bench.theoretical_bandwidth(877_000, 4096) == pytest.approx(898e9, rel=1e-3)


@pytest.mark.parametrize("clock, width", [(None, None), (0, 5120), (2_619_000, 0), (None, 5120)])
def test_theoretical_bandwidth_is_unknown_when_the_driver_reports_no_clock_or_width(clock, width):
    assert bench.theoretical_bandwidth(clock, width) is None


def test_bandwidth_row_gives_the_achieved_rate_against_theory_and_copy():
    row = bench.bandwidth_row("Adam", "nnhp kernel", 28, 1 << 26, 400e-6, theoretical=4.8e12, copy=4.0e12)
    # 28 B x 2**26 / 400 us = 4,697.6 GB/s
    assert row == "| Adam | nnhp kernel | 28 | 400 | 4,698 | 98% | 117% |"
    assert row.count("|") == bench.bandwidth_header().splitlines()[0].count("|")


def test_bandwidth_row_says_unknown_without_a_theoretical_bandwidth():
    row = bench.bandwidth_row("SGD", "nnhp kernel", 12, 1 << 26, 200e-6, theoretical=None, copy=4.0e12)
    assert row.split(" | ")[5] == "unknown"


def test_device_facts_are_decoded_and_formatted():
    assert bench.decode_name(b"NVIDIA H200\x00\x00\x00") == "NVIDIA H200"
    assert bench.decode_name("NVIDIA A100-SXM4-80GB") == "NVIDIA A100-SXM4-80GB"
    assert bench.cuda_version_text(12080) == "12.8"
    assert bench.cuda_version_text(11040) == "11.4"
    assert bench.cuda_version_text(13000) == "13.0"


# --- the throughput table ---------------------------------------------------------------------
def test_cpu_table_header_is_unchanged():
    assert bench.table_header("nnhp") == (
        "| batch | engine | samples/s (median) | range over repeats | vs nnhp | GFLOP/s | % of GEMM peak |\n"
        "|---:|---|---:|---:|---:|---:|---:|")


def test_table_row_of_the_base_engine():
    # A row of benchmarks/RESULTS.md: 2.407 MFLOP/sample, peak 204.6 GFLOP/s.
    row = bench.table_row(64, "nnhp", [34_946, 38_787, 42_080], "nnhp", 38_787, FLOPS, 204.6e9)
    assert row == "| 64 | nnhp | 38,787 | 34,946-42,080 | 1.00x | 93.4 | 46% |"


def test_table_row_ratio_is_the_base_over_the_engine():
    row = bench.table_row(1024, "torch-cuda", [200_000, 250_000, 300_000], "nnhp-cupy", 500_000, FLOPS, 50e12)
    assert row.split(" | ")[4] == "2.00x"
    assert row.endswith(f"| {250_000 * FLOPS / 1e9:.1f} | 1% |")


def test_table_row_without_a_measured_base_has_no_ratio():
    row = bench.table_row(1024, "torch-cuda", [250_000], "nnhp-cupy", None, FLOPS, 50e12)
    assert row.split(" | ")[4] == "-"


def test_table_row_of_a_failed_engine_says_so():
    assert bench.table_row(4096, "torch-cuda", [], "nnhp-cupy", 1.0, FLOPS, 1.0) == \
        "| 4096 | torch-cuda | failed | - | - | - | - |"


# --- the command line -------------------------------------------------------------------------
def test_help_documents_the_gpu_mode():
    result = run_script("--help")
    assert result.returncode == 0
    assert "--gpu" in result.stdout
    assert "without CuPy or a GPU" in " ".join(result.stdout.split())


def test_gpu_engines_are_refused_without_gpu_and_cpu_engines_with_it(capsys):
    for argv in (["--engines", "nnhp-cupy"], ["--gpu", "--engines", "nnhp"]):
        with pytest.raises(SystemExit) as exit_info:
            bench.main(argv)
        assert exit_info.value.code == 2
        assert "the engines are" in capsys.readouterr().err


def test_gpu_mode_without_a_gpu_prints_one_line_and_exits_0():
    reason = bench.gpu_unavailable_reason()
    if reason is None:
        pytest.skip("this machine has a GPU; see test_gpu_quick_run_measures_every_engine_and_adam")
    result = run_script("--gpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"GPU figures not measured: {reason}."]


# --- on a GPU ---------------------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_quick_run_measures_every_engine_and_adam():
    reason = bench.gpu_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    result = run_script("--gpu", "--quick", timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    import cupy
    name = bench.decode_name(cupy.cuda.runtime.getDeviceProperties(0)["name"])
    assert f"device: {name}" in output
    engines = ["nnhp-cupy", "nnhp-cupy-plain"]
    if bench.torch_cuda_unavailable_reason() is None:
        engines += ["torch-cuda", "torch-cuda-fused"]
        assert "TF32 off" in output
    for batch_size in bench.GPU_BATCH_SIZES:
        for engine in engines:
            assert re.search(rf"^\| {batch_size} \| {engine} \| [\d,]+ \| [\d,]+-[\d,]+ \| ", output, re.M), \
                f"no row for {engine} at batch {batch_size}:\n{output}"
    assert f"Optimizer step on {name}" in output
    assert re.search(r"^\| Adam \| nnhp kernel \| 28 \| [\d,]+ \| [\d,]+ \| (\d+%|unknown) \| \d+% \|$",
                     output, re.M), output
