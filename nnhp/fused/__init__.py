"""The fused path: compiled kernels that do a layer's (or a loss's, or an optimizer's)
elementwise work in one pass, behind one seam.

The plain code in ``nnhp/layers.py``, ``losses.py`` and ``optim.py`` is the reference
and knows nothing of this package. A model compiles its layers into a plan of steps
(``compile_plan``), and ``fit`` wraps the loss and the optimizer (``loss_step``,
``optimizer_step``); where a fused step stands in for a layer it runs a kernel when
the policy says so, and the layer's own code otherwise.

=====================  ==================================================================
``policy.py``          on / off / auto (``NNHP_JIT``, a model's ``jit=``); loading off the hot path
``table.py``           what auto knows: speed-ups measured on this machine, cached on disk
``calibrate.py``       the measuring: each kernel family against its plain code, per size class
``steps.py``           the fused steps (DenseActivation, ...) and the plan compiler
``shared.py``          what both kernel sets share: activation codes, optimizer arguments
``cpu.py``             the CPU kernel set, over ``numba_kernels.py`` (numba)
``cuda.py``            the GPU kernel set, over ``kernels/*.cu`` (CuPy + NVRTC)
=====================  ==================================================================

Imports go one way: steps -> policy -> table; calibrate -> steps; the kernel sets
(cpu, cuda -> shared) are imported by the policy only when they are about to be used.

``python -m nnhp.fused --compile`` compiles the kernels and measures them now, instead
of in the background on first use; ``--show`` prints what auto decided on this machine.
"""
from .policy import ENV_VAR, JitUnavailableError, choose, mode, prepare
from .steps import compile_plan, loss_step, optimizer_step

__all__ = ["ENV_VAR", "JitUnavailableError", "choose", "compile_plan", "loss_step", "mode", "optimizer_step",
           "prepare"]
