"""Models: a stack of layers sharing one flat parameter buffer.

``Sequential`` chains layers: ``forward`` runs them first to last, ``backward`` runs
their gradients last to first, as a plan compiled when the model is built
(``nnhp.fused.compile_plan``): the layers themselves, except where a fused step stands
in for one or two of them (a Dense layer and its activation, say), so both loops are a
plain walk over the plan's steps. All parameters live in one contiguous 1-D array
(``flat_params``) and each layer's ``W`` and ``b`` are reshaped *views* into it;
gradients likewise (``flat_grads``). Training therefore updates the whole network with
one vectorized optimizer step, and a checkpoint is a single array copy.

Models are saved as ``.npz`` files holding the architecture (JSON text), the dtype and
the weights, and load with ``allow_pickle=False``: opening a model file never runs code
(``nnhp.checkpoint`` writes and checks them).
"""
from __future__ import annotations

import json

import numpy

from . import _checks, fused
from . import layers as layer_types
from . import losses
from .backend import get_backend, make_rng, to_numpy
from .data import check_X

class Sequential:
    """Layers applied in order. ``seed`` fixes the initial weights and dropout masks.

    Attributes: ``layers``, ``backend`` (array module + dtype), ``rng`` (the model's
    seeded generator), ``flat_params``/``flat_grads`` and their per-tensor views
    ``params``/``grads`` (W1, b1, W2, b2, ...).

    ``dtype``: "float32" or "float64"; None means float32, or the dtype of a Backend object
    passed as ``backend`` (``nnhp.backend.get_backend("cupy", "float64")``).

    ``jit``: fused kernels (numba on the CPU, CUDA on the GPU; see ``nnhp.fused``).
    None follows ``NNHP_JIT`` (default: where measured faster on this machine), False
    keeps the plain array code, True insists. ``fit``/``evaluate`` pass it on to the
    loss and optimizer. ``plan``: the steps ``forward`` and ``backward`` run.
    """

    def __init__(self, layers, seed=0, dtype=None, backend=None, *, jit=None):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("a model needs at least one layer")
        for layer in self.layers:
            if not isinstance(layer, layer_types.Layer):
                raise TypeError(f"expected nnhp layers; got {type(layer).__name__}")
        self.backend = get_backend(backend, dtype)
        self.seed = seed
        self.rng = make_rng(seed)
        self.loss_name = None   # set by fit; decides what predict returns
        self._allocate_parameters()
        for layer in self.layers:
            if isinstance(layer, layer_types.Dropout):
                layer.rng = self.rng
        self.jit = jit

    @property
    def jit(self):
        return self._jit

    @jit.setter
    def jit(self, setting) -> None:
        """Set the fused-kernel setting and compile the plan for it."""
        fused.mode(setting)                     # an unknown value fails here
        self._jit = setting
        self.plan = fused.compile_plan(self.layers, setting)
        fused.prepare(self.backend.xp, self.backend.dtype, setting)

    # --- parameters -------------------------------------------------------------
    def _allocate_parameters(self) -> None:
        shapes = [shape for layer in self.layers for shape in layer.param_shapes()]
        total = sum(int(numpy.prod(shape)) for shape in shapes)
        if self.backend.name == "numpy":   # refuse now: an overcommitting kernel "allocates", then kills
            _checks.memory(2 * total * self.backend.dtype.itemsize,
                           f"a model of {total:,} parameters (weights and gradients)")
        self.flat_params = self.backend.zeros(total)
        self.flat_grads = self.backend.zeros(total)
        self.params, self.grads = [], []
        offset = 0
        for index, layer in enumerate(self.layers):
            layer_params, layer_grads = [], []
            values = layer.initial_values(self.rng, self._gain_for(index))
            for shape, value in zip(layer.param_shapes(), values):
                size = int(numpy.prod(shape))
                param = self.flat_params[offset:offset + size].reshape(shape)
                param[...] = self.backend.asarray(value)
                layer_params.append(param)
                layer_grads.append(self.flat_grads[offset:offset + size].reshape(shape))
                offset += size
            layer.bind(layer_params, layer_grads)
            self.params += layer_params
            self.grads += layer_grads

    def _gain_for(self, index: int) -> float:
        """The init gain for layer ``index``: from the activation that follows it.

        Xavier scales by the next activation's gain (PyTorch's calculate_gain); He
        scales by the ReLU family's. Without a following activation the gain is 1.
        """
        layer = self.layers[index]
        following = self.layers[index + 1:]
        following = [l for l in following if not isinstance(l, layer_types.Dropout)]
        activation = following[0] if following and isinstance(following[0], layer_types.Activation) else None
        if getattr(layer, "init", "").startswith("he_"):
            if activation is None:
                return layer_types.initializers.he_gain("relu")
            slope = getattr(activation, "negative_slope", 0.01)
            return layer_types.initializers.he_gain(activation.name, slope)
        if activation is None or not layer_types.initializers.uses_activation_gain(getattr(layer, "init", "")):
            return 1.0
        return activation.gain()

    @property
    def weights(self) -> list:
        """The weight matrices (not biases): what L1/L2 penalties act on."""
        return [layer.params[0] for layer in self.layers if isinstance(layer, layer_types.Dense)]

    @property
    def weight_grads(self) -> list:
        return [layer.grads[0] for layer in self.layers if isinstance(layer, layer_types.Dense)]

    @property
    def n_params(self) -> int:
        return int(self.flat_params.size)

    @property
    def n_inputs(self) -> int:
        return self._dense_layers()[0].n_in

    @property
    def n_outputs(self) -> int:
        return self._dense_layers()[-1].n_out

    def _dense_layers(self):
        dense = [layer for layer in self.layers if isinstance(layer, layer_types.Dense)]
        if not dense:
            raise ValueError("model has no Dense layer")
        return dense

    # --- computation ------------------------------------------------------------
    def forward(self, X, training: bool = False):
        """Raw outputs (logits for classifiers) for a batch ``X`` of shape (n, n_inputs)."""
        X = self._check_input(X)
        out = self._forward(X, training)
        # In training mode fused steps write into reused buffers; hand the caller its own copy.
        return out.copy() if training else out

    def _forward(self, X, training: bool):
        out = X
        for step in self.plan:
            out = step.forward(out, training)
        return out

    def backward(self, grad_out, need_input_grad: bool = True):
        """Backpropagate ``grad_out = dL/d(outputs)``; fills ``grads``, returns dL/dX.

        With ``need_input_grad=False`` the first step skips computing dL/dX (a whole
        matrix product that training never uses) and ``None`` is returned.
        """
        grad = self.backend.asarray(grad_out)
        first, *rest = self.plan
        for step in reversed(rest):
            grad = step.backward(grad)
        if need_input_grad:
            # Steps may write into reused buffers; hand the caller its own copy (as forward does).
            return first.backward(grad).copy()
        if first.params:     # a first step without parameters has nothing left to compute
            first.backward(grad, need_input_grad=False)
        return None

    def predict(self, X, batch_size: int = 4096):
        """Outputs for ``X``: class probabilities for a classifier (softmax / sigmoid),
        raw values for regression. Runs in inference mode (no dropout), in chunks."""
        X = self._check_input(X)
        transform = losses.get(self.loss_name).output_transform if self.loss_name else (lambda out: out)
        chunks = [transform(self._forward(X[start:start + batch_size], False))
                  for start in range(0, X.shape[0], batch_size)]
        return chunks[0] if len(chunks) == 1 else self.backend.xp.concatenate(chunks)

    def _check_input(self, X):
        if isinstance(X, numpy.ndarray) or not hasattr(X, "__cuda_array_interface__"):
            X = check_X(X, n_features=self.n_inputs, dtype=self.backend.dtype)
        elif X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"X must have shape (n, {self.n_inputs}); got {X.shape}")
        return self.backend.asarray(X)

    # --- state and files ----------------------------------------------------------
    def get_state(self) -> dict:
        """Weights and generator state as NumPy arrays (what a checkpoint needs)."""
        return {"flat_params": to_numpy(self.flat_params).copy(),
                "rng_state": numpy.array(json.dumps(self.rng.bit_generator.state))}

    def set_state(self, state: dict) -> None:
        params = numpy.asarray(state["flat_params"])
        if params.shape != self.flat_params.shape:
            raise ValueError(f"state holds {params.size} parameters; this model has {self.flat_params.size}")
        self.flat_params[...] = self.backend.asarray(params)
        if "rng_state" in state:
            self.rng.bit_generator.state = json.loads(str(state["rng_state"]))

    def architecture(self) -> list:
        return [{"type": type(layer).__name__, "config": layer.config()} for layer in self.layers]

    def save(self, path) -> str:
        """Write architecture, dtype, weights and loss to an ``.npz`` file, atomically (see
        ``nnhp.checkpoint``); returns the path written (``.npz`` is appended when missing)."""
        from .checkpoint import save_model
        return save_model(self, path)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"{type(self).__name__}([\n  {inner}\n], n_params={self.n_params}, backend={self.backend})"


class MLP(Sequential):
    """A multilayer perceptron: Dense -> activation [-> Dropout] for each hidden layer, then Dense.

    ``sizes = [n_inputs, hidden..., n_outputs]``. The output layer has no activation:
    the loss applies softmax/sigmoid itself (see ``nnhp.losses``).
    """

    def __init__(self, sizes, activation: str = "relu", dropout: float = 0.0, init: str = "xavier_uniform",
                 seed=0, dtype=None, backend=None, *, jit=None):
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP sizes must list at least inputs and outputs, e.g. [64, 10]; got {sizes}")
        layer_types.activation(activation)  # unknown names fail here, before any work
        dropout = _checks.probability(dropout, "dropout")
        stack = []
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
            stack.append(layer_types.Dense(n_in, n_out, init=init))
            stack.append(layer_types.activation(activation))
            if dropout > 0:
                stack.append(layer_types.Dropout(dropout))
        stack.append(layer_types.Dense(sizes[-2], sizes[-1], init=init))
        self.sizes, self.activation, self.dropout, self.init = sizes, activation, float(dropout), init
        super().__init__(stack, seed=seed, dtype=dtype, backend=backend, jit=jit)


def load(path, backend=None) -> Sequential:
    """Load a model saved with ``model.save`` (no pickle, every field and shape checked before
    anything is built; see ``nnhp.checkpoint``), onto ``backend``."""
    from .checkpoint import read_model

    stack, meta, flat = read_model(path)
    model = Sequential(stack, seed=meta.get("seed"), dtype=meta["dtype"], backend=backend)
    model.flat_params[...] = model.backend.asarray(flat.astype(model.backend.dtype, copy=False))
    model.loss_name = meta.get("loss")
    return model


__all__ = ["Sequential", "MLP", "load"]
