"""Layers: each one computes its output and, right beside it, its gradient.

Backpropagation is the chain rule applied layer by layer. A layer maps ``x -> out``
in ``forward`` and keeps what its derivative needs; ``backward`` receives
``grad_out = dL/dout`` and returns ``grad_in = dL/dx``, and a layer with parameters
also writes ``dL/dW`` and ``dL/db`` into its gradient arrays.

Shapes: a batch is ``(n, features)``. A Dense weight is ``(n_in, n_out)`` so the
forward pass is one matrix product ``x @ W``.

Parameters and gradients are *views* into the model's two flat buffers (see
``nnhp.model``): a layer never allocates its own weights, so an optimizer can update
the whole network in one vectorized step.

This file is the reference: plain array code, read as the formulas in the docstrings.
Compiled kernels that do some of these passes faster (a Dense layer's bias together
with its activation, dropout) live in ``nnhp.fused``, which the model puts in place of
a layer when they measured faster; they are tested against the code here.
"""
from __future__ import annotations

import numpy

from . import _checks
from . import init as initializers
from . import philox
from .backend import array_module


class Layer:
    """Base class: no parameters, identity behaviour left to subclasses."""

    def __init__(self):
        self.params: list = []   # views into the model's flat parameter buffer
        self.grads: list = []    # views into the model's flat gradient buffer

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
        """dL/dx from ``grad_out`` = dL/dout. A layer with parameters also fills its
        ``grads`` and takes ``need_input_grad=False`` (the network's first layer while
        training), which lets it skip dL/dx and return None."""
        raise NotImplementedError

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
        self.x = x
        return x @ self.W + self.b

    def backward(self, grad_out, need_input_grad: bool = True):
        xp = array_module(grad_out)
        dW, db = self.grads
        # Written straight into the flat gradient buffer: no copy, no allocation.
        xp.matmul(self.x.T, grad_out, out=dW)
        grad_out.sum(axis=0, out=db)
        if not need_input_grad:
            return None
        return grad_out @ self.W.T


class Activation(Layer):
    """An elementwise nonlinearity ``out = f(x)``; backward is ``grad_out * f'(x)``.

    Every f' here can be written with the output alone, so ``forward`` keeps ``out``
    and nothing else."""

    name = "identity"

    def gain(self) -> float:
        """The initialization gain for weights feeding this activation."""
        return initializers.gain(self.name)


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

    def forward(self, x, training=False):
        self.out = array_module(x).maximum(x, 0)
        return self.out

    def backward(self, grad_out):
        # out > 0 exactly where x > 0, so the cached output is all backward needs.
        return grad_out * (self.out > 0)


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

    def forward(self, x, training=False):
        self.out = array_module(x).where(x > 0, x, self.negative_slope * x)
        return self.out

    def backward(self, grad_out):
        slope = array_module(grad_out).where(self.out > 0, 1, self.negative_slope)   # out > 0 where x > 0
        return grad_out * slope.astype(grad_out.dtype)


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

    def forward(self, x, training=False):
        xp = array_module(x)
        # expm1 of min(x, 0): accurate near 0, and no overflow for the large x the where drops.
        self.out = xp.where(x > 0, x, self.alpha * xp.expm1(xp.minimum(x, 0)))
        return self.out

    def backward(self, grad_out):
        return grad_out * array_module(grad_out).where(self.out > 0, 1, self.out + self.alpha)


class Tanh(Activation):
    """out = tanh(x);  dL/dx = grad_out * (1 - out^2)."""

    name = "tanh"

    def forward(self, x, training=False):
        self.out = array_module(x).tanh(x)
        return self.out

    def backward(self, grad_out):
        return grad_out * (1 - self.out * self.out)


class Sigmoid(Activation):
    """out = 1 / (1 + exp(-x));  dL/dx = grad_out * out * (1 - out).

    Computed as (1 + tanh(x / 2)) / 2, the same function without exp overflowing for
    very negative x.
    """

    name = "sigmoid"

    def forward(self, x, training=False):
        self.out = 0.5 * (1 + array_module(x).tanh(0.5 * x))
        return self.out

    def backward(self, grad_out):
        return grad_out * (self.out * (1 - self.out))


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
        self.mask = None

    def config(self):
        return {"p": self.p}

    def forward(self, x, training=False):
        if not training or self.p == 0.0:
            self.key = self.mask = None
            return x
        keep_prob = 1.0 - self.p
        kept = array_module(x).asarray(philox.keep_mask(self.next_key(), x.shape, keep_prob))
        self.mask = kept * x.dtype.type(1.0 / keep_prob)
        return x * self.mask

    def backward(self, grad_out):
        if self.mask is None:
            return grad_out
        return grad_out * self.mask

    def next_key(self) -> int:
        """A fresh Philox key for this training step, from the model's generator; kept
        in ``key`` (the mask is a function of it) and the old mask dropped."""
        self.key = philox.new_key(self.rng)
        self.mask = None
        return self.key


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
