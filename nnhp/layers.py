"""Layers: each one computes its output and, right beside it, its gradient.

Backpropagation is the chain rule applied layer by layer. A layer maps ``x -> out``
in ``forward`` and keeps what its derivative needs; ``backward`` receives
``grad_out = dL/dout`` and returns ``grad_in = dL/dx``, and a layer with parameters
also writes ``dL/dW`` and ``dL/db`` into its gradient arrays.

Shapes: a batch is ``(n, features)``. A Dense weight is ``(n_in, n_out)`` so the
forward pass is one matrix product ``x @ W``.

Parameters and gradients are *views* into the model's two flat buffers (see
``nnhp.model``): a layer never allocates its own weights, so an optimizer can update
the whole network in one vectorized step. During training, layers also reuse their
output and gradient arrays from batch to batch (``_buffer``) instead of allocating
new ones: same numbers, less memory traffic.
"""
from __future__ import annotations

import functools

import numpy

from . import _checks
from . import init as initializers
from . import jit as _jit
from . import philox
from .backend import array_module


class Layer:
    """Base class: no parameters, identity behaviour left to subclasses."""

    def __init__(self):
        self.params: list = []   # views into the model's flat parameter buffer
        self.grads: list = []    # views into the model's flat gradient buffer
        self._buffers: dict = {}
        self.jit = None          # fused kernels: None follows NNHP_JIT (see nnhp.jit); set by the model

    # --- parameters -------------------------------------------------------------
    def param_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of this layer's parameters, in the order of ``params``."""
        return []

    def initial_values(self, rng, gain: float | None = None) -> list[numpy.ndarray]:
        """Freshly initialized parameter values (float64, host), one per shape."""
        return []

    def bind(self, params: list, grads: list) -> None:
        """Adopt views into the model's flat buffers as this layer's parameters."""
        self.params, self.grads = list(params), list(grads)

    def config(self) -> dict:
        """Constructor arguments, for saving a model without pickle."""
        return {}

    # --- computation ------------------------------------------------------------
    def forward(self, x, training: bool = False):
        raise NotImplementedError

    def backward(self, grad_out):
        raise NotImplementedError

    def _buffer(self, key: str, shape, like, dtype=None):
        """A scratch array kept from call to call.

        It holds as many rows as the largest batch seen, and a smaller batch (the ragged
        last one of an epoch) gets its leading rows: a contiguous view, no reallocation.
        """
        buffer = self._buffers.get(key)
        dtype = like.dtype if dtype is None else dtype
        if (buffer is None or buffer.dtype != dtype or buffer.shape[1:] != tuple(shape[1:])
                or buffer.shape[0] < shape[0]):
            buffer = array_module(like).empty(shape, dtype=dtype)
            self._buffers[key] = buffer
        return buffer if buffer.shape[0] == shape[0] else buffer[:shape[0]]

    def _output(self, key: str, x, training: bool, dtype=None):
        """Where to write an output shaped like ``x``: a reused buffer while training."""
        if training:
            return self._buffer(key, x.shape, x, dtype)
        return array_module(x).empty(x.shape, dtype=x.dtype if dtype is None else dtype)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """Fully connected layer.

    forward:   out = x @ W + b                      x: (n, n_in), W: (n_in, n_out), b: (n_out,)
    backward:  dL/dW = x^T @ grad_out               (summed over the batch)
               dL/db = sum over rows of grad_out
               dL/dx = grad_out @ W^T
    """

    def __init__(self, n_in: int, n_out: int, init: str = "xavier_uniform", gain: float | None = None):
        super().__init__()
        for name, value in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(value, (int, numpy.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Dense {name} must be a positive integer; got {value!r}")
        initializers.get(init)  # fail now, not at build time, on an unknown name
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.init = init
        self.gain = gain
        self.x = None

    @property
    def W(self):
        return self.params[0]

    @property
    def b(self):
        return self.params[1]

    def param_shapes(self):
        return [(self.n_in, self.n_out), (self.n_out,)]

    def initial_values(self, rng, gain=None):
        if self.gain is not None:
            gain = self.gain
        if gain is None:
            gain = 1.0
        weights = initializers.get(self.init)(self.n_in, self.n_out, rng, gain)
        return [weights, numpy.zeros(self.n_out)]   # biases start at zero

    def config(self):
        config = {"n_in": self.n_in, "n_out": self.n_out, "init": self.init}
        if self.gain is not None:
            config["gain"] = self.gain
        return config

    def forward(self, x, training=False):
        xp = array_module(x)
        W, b = self.params
        self.x = x
        if training:
            out = self._buffer("out", (x.shape[0], self.n_out), x)
            xp.matmul(x, W, out=out)
        else:
            out = x @ W
        out += b
        return out

    def backward(self, grad_out, need_input_grad: bool = True):
        xp = array_module(grad_out)
        dW, db = self.grads
        # Written straight into the flat gradient buffer: no copy, no allocation.
        xp.matmul(self.x.T, grad_out, out=dW)
        grad_out.sum(axis=0, out=db)
        if not need_input_grad:
            return None
        grad_in = self._buffer("grad_in", self.x.shape, grad_out)
        return xp.matmul(grad_out, self.params[0].T, out=grad_in)


def fusable(method):
    """Let a fused kernel stand in for an activation's ``forward`` or ``backward``.

    When ``nnhp.jit`` has a kernel for the array (numba on the CPU, CUDA on the GPU; see
    there for when), the activation's ``_fused_forward``/``_fused_backward`` runs it;
    otherwise the NumPy code of the decorated method runs: it is the reference the
    kernels are tested against.
    """
    fused_method = f"_fused_{method.__name__}"

    @functools.wraps(method)
    def dispatch(self, array, *args, **kwargs):
        kernels = _jit.fused(array, self.jit, self.name)
        if kernels is not None:
            return getattr(self, fused_method)(kernels, array, *args, **kwargs)
        return method(self, array, *args, **kwargs)
    return dispatch


class Activation(Layer):
    """An elementwise nonlinearity ``out = f(x)``; backward is ``grad_out * f'(x)``."""

    name = "identity"

    def gain(self) -> float:
        """The initialization gain for weights feeding this activation."""
        return initializers.gain(self.name)

    # Fused kernels (numba on the CPU, CUDA on the GPU; see nnhp.jit) do forward or
    # backward in one pass. Backward then needs only the output: f'(x) is a function
    # of out = f(x) for every activation here.
    def _fused_forward(self, kernels, x, training=False):
        self.out = kernels.activation_forward(x, self._output("out", x, training), self)
        return self.out

    def _fused_backward(self, kernels, grad_out):
        grad_in = self._buffer("grad_in", grad_out.shape, grad_out)
        return kernels.activation_backward(grad_out, self.out, grad_in, self)


class Identity(Activation):
    """out = x;  dL/dx = grad_out."""

    name = "identity"

    def forward(self, x, training=False):
        return x

    def backward(self, grad_out):
        return grad_out


class ReLU(Activation):
    """out = max(x, 0);  dL/dx = grad_out * [x > 0]."""

    name = "relu"

    @fusable
    def forward(self, x, training=False):
        xp = array_module(x)
        self.out = xp.maximum(x, 0, out=self._output("out", x, training))
        return self.out

    @fusable
    def backward(self, grad_out):
        xp = array_module(grad_out)
        # out > 0 exactly where x > 0, so the cached output is all backward needs.
        return xp.multiply(grad_out, self.out > 0, out=self._buffer("grad_in", grad_out.shape, grad_out))


class LeakyReLU(Activation):
    """out = x if x > 0 else slope * x;  dL/dx = grad_out * (1 if x > 0 else slope)."""

    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        if not 0.0 <= negative_slope < 1.0:
            raise ValueError(f"LeakyReLU negative_slope must be in [0, 1); got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def gain(self):
        return initializers.gain("leaky_relu", self.negative_slope)

    def config(self):
        return {"negative_slope": self.negative_slope}

    @fusable
    def forward(self, x, training=False):
        xp = array_module(x)
        out = self._output("out", x, training)
        # max(x, slope * x) equals the piecewise definition because 0 <= slope < 1.
        xp.multiply(x, x.dtype.type(self.negative_slope), out=out)
        self.out = xp.maximum(x, out, out=out)
        return self.out

    @fusable
    def backward(self, grad_out):
        xp = array_module(grad_out)
        # grad_out * slope everywhere, then grad_out itself where x > 0 (exactly where out > 0).
        grad_in = xp.multiply(grad_out, grad_out.dtype.type(self.negative_slope),
                              out=self._buffer("grad_in", grad_out.shape, grad_out))
        positive = xp.greater(self.out, 0, out=self._buffer("positive", grad_out.shape, grad_out, bool))
        xp.copyto(grad_in, grad_out, where=positive)
        return grad_in


class ELU(Activation):
    """out = x if x > 0 else alpha * (exp(x) - 1);  f'(x) = 1 if x > 0 else out + alpha."""

    name = "elu"

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"ELU alpha must be positive; got {alpha!r}")
        self.alpha = float(alpha)

    def config(self):
        return {"alpha": self.alpha}

    @fusable
    def forward(self, x, training=False):
        xp = array_module(x)
        out = self._output("out", x, training)
        # expm1 of min(x, 0): accurate near 0 and never overflows for large positive x.
        xp.minimum(x, 0, out=out)
        xp.expm1(out, out=out)
        out *= x.dtype.type(self.alpha)
        xp.copyto(out, x, where=xp.greater(x, 0, out=self._buffer("positive", x.shape, x, bool)))
        self.out = out
        return out

    @fusable
    def backward(self, grad_out):
        xp = array_module(grad_out)
        # grad_out * (out + alpha) everywhere, then grad_out itself where x > 0 (where out > 0).
        grad_in = xp.add(self.out, grad_out.dtype.type(self.alpha),
                         out=self._buffer("grad_in", grad_out.shape, grad_out))
        grad_in *= grad_out
        positive = xp.greater(self.out, 0, out=self._buffer("positive", grad_out.shape, grad_out, bool))
        xp.copyto(grad_in, grad_out, where=positive)
        return grad_in


class Tanh(Activation):
    """out = tanh(x);  dL/dx = grad_out * (1 - out^2)."""

    name = "tanh"

    @fusable
    def forward(self, x, training=False):
        xp = array_module(x)
        self.out = xp.tanh(x, out=self._output("out", x, training))
        return self.out

    @fusable
    def backward(self, grad_out):
        xp = array_module(grad_out)
        grad_in = self._buffer("grad_in", grad_out.shape, grad_out)
        xp.multiply(self.out, self.out, out=grad_in)
        xp.subtract(grad_out.dtype.type(1), grad_in, out=grad_in)
        return xp.multiply(grad_in, grad_out, out=grad_in)


class Sigmoid(Activation):
    """out = 1 / (1 + exp(-x));  dL/dx = grad_out * out * (1 - out).

    Computed as (1 + tanh(x / 2)) / 2, the same function without exp overflowing for
    very negative x.
    """

    name = "sigmoid"

    @fusable
    def forward(self, x, training=False):
        xp = array_module(x)
        half = x.dtype.type(0.5)
        out = self._output("out", x, training)
        xp.multiply(x, half, out=out)
        xp.tanh(out, out=out)
        out += 1
        out *= half
        self.out = out
        return out

    @fusable
    def backward(self, grad_out):
        xp = array_module(grad_out)
        grad_in = self._buffer("grad_in", grad_out.shape, grad_out)
        xp.subtract(grad_out.dtype.type(1), self.out, out=grad_in)
        grad_in *= self.out
        return xp.multiply(grad_in, grad_out, out=grad_in)


class Dropout(Layer):
    """Inverted dropout: zero each unit with probability ``p`` while training.

    forward (training):  mask_i = [u_i < 1 - p] / (1 - p);  out = x * mask
    forward (inference): out = x
    backward:            dL/dx = grad_out * mask

    Dividing by the keep probability ``1 - p`` during training keeps the expected
    activation unchanged, so nothing needs rescaling at inference.

    The u_i are counter-based random numbers (``nnhp.philox``): a pure function of a
    64-bit key and the element index. Each training step takes one fresh key from the
    model's seeded generator (``rng``, set when the layer joins a model), so masks are
    reproducible by seed, identical on NumPy, numba and CUDA, and a fused kernel can
    recompute the mask in backward instead of storing it.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = _checks.probability(p, "Dropout rate p")
        self.rng = numpy.random.default_rng()  # replaced by the model's generator
        self.key = None       # this step's Philox key (None: no mask in effect)
        self.mask = None      # the stored mask (plain path only)
        self._kernels = None  # the fused kernels that applied it, if any

    def config(self):
        return {"p": self.p}

    def forward(self, x, training=False):
        if not training or self.p == 0.0:
            self.key = self.mask = None
            return x
        keep_prob = 1.0 - self.p
        self.key = philox.new_key(self.rng)
        out = self._buffer("out", x.shape, x)
        self._kernels = _jit.fused(x, self.jit, "dropout")
        if self._kernels is not None:
            self.mask = None   # backward recomputes it from the key
            return self._kernels.dropout_apply(x, out, self.key, keep_prob)
        xp = array_module(x)
        mask = self._buffer("mask", x.shape, x)
        # mask = [u < keep_prob] / keep_prob, written into the reused buffer
        mask[...] = xp.asarray(philox.keep_mask(self.key, x.shape, keep_prob))
        mask *= x.dtype.type(1.0 / keep_prob)
        self.mask = mask
        return xp.multiply(x, mask, out=out)

    def backward(self, grad_out):
        if self.key is None:
            return grad_out
        grad_in = self._buffer("grad_in", grad_out.shape, grad_out)
        if self.mask is None:
            return self._kernels.dropout_apply(grad_out, grad_in, self.key, 1.0 - self.p)
        return array_module(grad_out).multiply(grad_out, self.mask, out=grad_in)


ACTIVATIONS = {cls.name: cls for cls in (ReLU, LeakyReLU, ELU, Tanh, Sigmoid, Identity)}
LAYER_TYPES = {cls.__name__: cls for cls in (Dense, Dropout, ReLU, LeakyReLU, ELU, Tanh, Sigmoid, Identity)}


def activation(name: str, **kwargs) -> Activation:
    """A new activation layer by name: relu | leaky_relu | elu | tanh | sigmoid | identity."""
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name.lower()](**kwargs)


def from_config(type_name: str, config: dict) -> Layer:
    """Rebuild a layer from its type name and ``config()`` (used when loading a model)."""
    if type_name not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {type_name!r} in model file")
    return LAYER_TYPES[type_name](**config)
