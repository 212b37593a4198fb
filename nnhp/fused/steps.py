"""The fused steps of a model's execution plan, and of a training step's loss and update.

A model runs its layers as a plan (``nnhp.model``): a list of steps, each with
``forward`` and ``backward``. ``compile_plan`` puts a fused step where a kernel can
take over a layer's elementwise work:

==================  ==========================================================================
``DenseActivation``  a Dense layer and the activation after it: bias + f in one pass forward,
                     f' + the bias gradient in one pass backward; the matrix products stay BLAS's
``FusedActivation``  an activation on its own (not after a Dense layer)
``FusedDropout``     dropout, its mask recomputed from the key in backward instead of stored
==================  ==========================================================================

and ``fit`` wraps the loss and the optimizer the same way (``loss_step``,
``optimizer_step``). Each fused step asks ``policy.choose`` in ``forward`` which kernel
set to use, if any, and otherwise runs the layers' own code, untouched: the plain path
is the layers themselves. The fused path keeps its outputs in buffers reused from batch
to batch while training (``Buffers``).
"""
from __future__ import annotations

from ..backend import array_module
from ..layers import ACTIVATIONS, Dense, Dropout, Identity
from ..losses import CrossEntropy
from . import policy, shared

_ACTIVATION_TYPES = tuple(ACTIVATIONS.values())   # exact classes: a subclass keeps its own code


def compile_plan(layers, setting=None) -> list:
    """The steps that run ``layers``: each layer itself, or a fused step in its place.
    Only nnhp's own layer classes are fused (a subclass keeps its own code)."""
    plan = []
    for layer in layers:
        previous = plan[-1] if plan else None
        if type(layer) in _ACTIVATION_TYPES and type(previous) is Dense:
            plan[-1] = DenseActivation(previous, layer, setting)
        elif type(layer) in _ACTIVATION_TYPES and type(layer) is not Identity:
            plan.append(FusedActivation(layer, setting))
        elif type(layer) is Dropout:
            plan.append(FusedDropout(layer, setting))
        else:
            plan.append(layer)
    return plan


class Buffers:
    """Arrays kept from call to call, one per name: outputs written in place while training.

    Each holds as many rows as the largest batch seen, and a smaller batch (the ragged
    last one of an epoch) gets its leading rows: a contiguous view, no reallocation.
    """

    def __init__(self):
        self.arrays: dict = {}

    def get(self, name: str, shape, like):
        array = self.arrays.get(name)
        if (array is None or array.dtype != like.dtype or array.shape[1:] != tuple(shape[1:])
                or array.shape[0] < shape[0] or array_module(array) is not array_module(like)):
            array = self.arrays[name] = array_module(like).empty(shape, dtype=like.dtype)
        return array if array.shape[0] == shape[0] else array[:shape[0]]

    def output(self, name: str, like, training: bool):
        """Where to write an output shaped like ``like``: a reused buffer while training,
        a new array otherwise (a caller may keep an inference output)."""
        if training:
            return self.get(name, like.shape, like)
        return array_module(like).empty(like.shape, dtype=like.dtype)


class DenseActivation:
    """``activation(dense(x))`` as one step.

    forward:   z = x @ W                          (BLAS)
               out = f(z + b)                     one fused pass, in place in z
    backward:  delta = grad_out * f'(z)           f' written with out = f(z)
               dL/db = sum over rows of delta     in the same pass as delta
               dL/dW = x^T @ delta;  dL/dx = delta @ W^T     (BLAS)
    """

    def __init__(self, dense, activation, setting=None):
        self.dense, self.activation, self.setting = dense, activation, setting
        self.family = f"dense_activation/{activation.name}"
        self.code, self.param = shared.activation_code(activation)
        self.buffers = Buffers()
        self.kernels = self.x = self.out = None

    @property
    def params(self) -> list:
        return self.dense.params

    def forward(self, x, training=False):
        self.kernels = policy.choose(x, self.family, x.shape[0] * self.dense.n_out, self.setting)
        if self.kernels is None:
            return self.activation.forward(self.dense.forward(x, training), training)
        self.x = x
        weights, bias = self.dense.params
        if training:
            z = array_module(x).matmul(x, weights, out=self.buffers.get("z", (x.shape[0], self.dense.n_out), x))
        else:
            z = x @ weights
        self.out = self.kernels.bias_activation_forward(z, bias, z, self.code, self.param)
        return self.out

    def backward(self, grad_out, need_input_grad: bool = True):
        if self.kernels is None:
            return self.dense.backward(self.activation.backward(grad_out), need_input_grad)
        xp = array_module(grad_out)
        weights_grad, bias_grad = self.dense.grads
        delta = self.buffers.get("delta", grad_out.shape, grad_out)
        self.kernels.activation_bias_backward(grad_out, self.out, delta, bias_grad, self.code, self.param)
        xp.matmul(self.x.T, delta, out=weights_grad)
        if not need_input_grad:
            return None
        return xp.matmul(delta, self.dense.params[0].T, out=self.buffers.get("grad_in", self.x.shape, delta))


class FusedActivation:
    """An activation on its own: out = f(x) forward, grad_out * f'(x) backward, one pass each."""

    params = ()

    def __init__(self, activation, setting=None):
        self.activation, self.setting = activation, setting
        self.family = f"activation/{activation.name}"
        self.code, self.param = shared.activation_code(activation)
        self.buffers = Buffers()
        self.kernels = self.out = None

    def forward(self, x, training=False):
        self.kernels = policy.choose(x, self.family, x.size, self.setting)
        if self.kernels is None:
            return self.activation.forward(x, training)
        self.out = self.kernels.activation_forward(x, self.buffers.output("out", x, training), self.code,
                                                   self.param)
        return self.out

    def backward(self, grad_out):
        if self.kernels is None:
            return self.activation.backward(grad_out)
        grad_in = self.buffers.get("grad_in", grad_out.shape, grad_out)
        return self.kernels.activation_backward(grad_out, self.out, grad_in, self.code, self.param)


class FusedDropout:
    """Dropout with the mask applied, and in backward recomputed, by one kernel pass: the
    Philox words of the layer's key for this step (the same mask as the layer's own code)."""

    params = ()

    def __init__(self, dropout, setting=None):
        self.dropout, self.setting = dropout, setting
        self.buffers = Buffers()
        self.kernels = self.key = None

    def forward(self, x, training=False):
        self.kernels = None
        if training and self.dropout.p > 0:
            self.kernels = policy.choose(x, "dropout", x.size, self.setting)
        if self.kernels is None:
            return self.dropout.forward(x, training)
        self.key = self.dropout.next_key()
        return self.kernels.dropout_apply(x, self.buffers.get("out", x.shape, x), self.key, 1.0 - self.dropout.p)

    def backward(self, grad_out):
        if self.kernels is None:
            return self.dropout.backward(grad_out)
        return self.kernels.dropout_apply(grad_out, self.buffers.get("grad_in", grad_out.shape, grad_out),
                                          self.key, 1.0 - self.dropout.p)


# --- the loss and the optimizer of a training step ---------------------------------------------
def loss_step(loss, setting=None):
    """``loss``, or for cross-entropy a step that can run softmax + loss + gradient fused."""
    return FusedCrossEntropy(loss, setting) if type(loss) is CrossEntropy else loss


class FusedCrossEntropy:
    """Softmax + cross-entropy + its gradient in one pass per row; ``backward`` returns the
    gradient computed in ``forward``. Otherwise the loss's own code."""

    def __init__(self, loss, setting=None):
        self.loss, self.setting = loss, setting
        self.kernels = self.grad = None

    def forward(self, out, y):
        y = self.loss.match_targets(out, y)
        self.kernels = policy.choose(out, "softmax_cross_entropy", out.size, self.setting)
        if self.kernels is None:
            return self.loss.forward(out, y)
        self.grad = array_module(out).empty(out.shape, dtype=out.dtype)
        return self.kernels.softmax_cross_entropy(out, y, self.grad)

    def backward(self):
        return self.loss.backward() if self.kernels is None else self.grad


def optimizer_step(optimizer, setting=None):
    """``optimizer``, or for a class with a fused update kernel a step that can run it."""
    return FusedOptimizer(optimizer, setting) if shared.has_kernel(optimizer) else optimizer


class FusedOptimizer:
    """``optimizer.step`` with its ``_update`` done by one kernel pass per parameter array;
    the optimizer's own bookkeeping (``begin_step``, ``flat_arrays``) around it."""

    def __init__(self, optimizer, setting=None):
        self.optimizer, self.setting = optimizer, setting
        self.family = f"optimizer/{type(optimizer).__name__}"
        self.kernels = None

    def step(self, params, grads) -> None:
        params, grads = list(params), list(grads)
        self.kernels = None
        if params:
            self.kernels = policy.choose(params[0], self.family, sum(param.size for param in params), self.setting)
        if self.kernels is None:
            return self.optimizer.step(params, grads)
        coeffs = self.optimizer.begin_step(params, grads)
        for param, grad, state in self.optimizer.flat_arrays(params, grads):
            self.kernels.optimizer_update(self.optimizer, param, grad, state, coeffs)
