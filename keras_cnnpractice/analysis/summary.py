"""Per-layer shapes, parameters, multiply-adds, memory and receptive fields."""

import csv
import dataclasses
import io
import math

import keras

from keras_cnnpractice.analysis.geometry import VIEW_LAYERS
from keras_cnnpractice.analysis.geometry import receptive_field_step
from keras_cnnpractice.analysis.macs import multiply_adds


@dataclasses.dataclass
class LayerRow:
    """One layer: its output and what it costs, per image."""

    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int
    activations: int
    activation_bytes: int
    receptive_field: tuple
    jump: tuple
    input_bits: object = None   # the input quantizer's width, if any
    weight_bits: object = None  # the kernel's stored width, if weights
    weight_bytes: float = 0     # the weights' memory at their widths


COLUMNS = ("layer", "type", "output", "params", "MACs", "activations",
           "memory (bytes)", "receptive field", "jump", "input bits",
           "weight bits", "weight memory (bytes)")


def _fmt_bits(bits):
    return "-" if bits is None else str(bits)


def _fmt_pair(pair):
    pair = tuple(int(v) if float(v).is_integer() else round(v, 3) for v in pair)
    return f"{pair[0]}x{pair[1]}" if len(pair) == 2 else "x".join(map(str, pair))


@dataclasses.dataclass
class Summary:
    """The analysis of a model: rows and totals.

    Memory figures: activations are the outputs of every layer plus the
    input, per image, in the bytes of each layer's compute dtype; layers
    whose output is a view or an identity at inference (Flatten, Reshape,
    Dropout) add nothing. The training estimate for a batch keeps all
    activations for the backward pass and adds the weights, their gradients
    and `optimizer_slots` more copies (2 for Adam, 1 for momentum SGD).
    """

    model_name: str
    rows: list
    input_shape: tuple
    input_bytes_per_element: int
    params: int
    trainable_params: int
    param_bytes: int
    trainable_param_bytes: int
    batch_size: int = 1
    optimizer_slots: int = 2

    @property
    def input_elements(self):
        return math.prod(self.input_shape)

    @property
    def weight_bytes(self):
        """The weights' memory at their quantized widths (the kernel of a
        layer with a `kernel_quantizer` at its `bits`, the rest as stored)."""
        return sum(r.weight_bytes for r in self.rows)

    @property
    def macs(self):
        return sum(r.macs for r in self.rows)

    @property
    def activations_per_image(self):
        return self.input_elements + sum(r.activations for r in self.rows)

    @property
    def forward_bytes_per_image(self):
        return (self.input_elements * self.input_bytes_per_element
                + sum(r.activation_bytes for r in self.rows))

    def training_bytes(self, batch_size=None):
        """Estimated training memory for `batch_size` images."""
        batch = batch_size or self.batch_size
        return (batch * self.forward_bytes_per_image + self.param_bytes
                + self.trainable_param_bytes * (1 + self.optimizer_slots))

    def table(self):
        """Header and string cells, one row per layer."""
        cells = [[r.name, r.kind, _fmt_pair(r.output_shape), f"{r.params:,}",
                  f"{r.macs:,}", f"{r.activations:,}",
                  f"{r.activation_bytes:,}", _fmt_pair(r.receptive_field),
                  _fmt_pair(r.jump), _fmt_bits(r.input_bits),
                  _fmt_bits(r.weight_bits), f"{r.weight_bytes:,.0f}"]
                 for r in self.rows]
        return list(COLUMNS), cells

    def totals(self):
        return {
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs_per_image": self.macs,
            "activations_per_image": self.activations_per_image,
            "forward_bytes_per_image": self.forward_bytes_per_image,
            "batch_size": self.batch_size,
            "optimizer_slots": self.optimizer_slots,
            "training_bytes": self.training_bytes(),
            "weight_bytes_quantized": self.weight_bytes,
        }

    def _totals_lines(self):
        t = self.totals()
        mib = 1024 ** 2
        return [
            f"input {_fmt_pair(self.input_shape)}: "
            f"{self.input_elements:,} values",
            f"parameters: {t['params']:,} ({t['trainable_params']:,} trainable), "
            f"{self.param_bytes / mib:.1f} MiB as stored, "
            f"{self.weight_bytes / mib:.2f} MiB at their quantized widths",
            f"multiply-adds per image: {t['macs_per_image']:,}",
            f"forward activations per image: {t['activations_per_image']:,} "
            f"values, {t['forward_bytes_per_image'] / mib:.1f} MiB",
            f"training memory estimate, batch {t['batch_size']} (activations "
            f"kept for backward, weights, gradients, {self.optimizer_slots} "
            f"optimizer slots): {t['training_bytes'] / mib:.1f} MiB",
        ]

    def to_markdown(self):
        header, cells = self.table()
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines + [""] + [f"- {ln}" for ln in self._totals_lines()]) + "\n"

    def to_csv(self):
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for r in self.rows:
            writer.writerow([r.name, r.kind, _fmt_pair(r.output_shape), r.params,
                             r.macs, r.activations, r.activation_bytes,
                             _fmt_pair(r.receptive_field), _fmt_pair(r.jump),
                             _fmt_bits(r.input_bits), _fmt_bits(r.weight_bits),
                             round(r.weight_bytes)])
        return out.getvalue()

    def __str__(self):
        header, cells = self.table()
        widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
                  for i, h in enumerate(header)]
        line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths))
        return "\n".join([f"Model: {self.model_name}", line(header),
                          line(["-" * w for w in widths])]
                         + [line(c) for c in cells] + self._totals_lines())


_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8,
                "int8": 1, "uint8": 1, "int32": 4, "int64": 8}


def _dtype_bytes(dtype):
    return _DTYPE_BYTES.get(keras.backend.standardize_dtype(dtype), 4)


def _bit_widths(layer, params):
    """(input bits, kernel bits, weight bytes) of a leaf layer: quantizer
    widths where the layer has quantizers (QuantConv2D, ...), else the
    variables' dtype."""
    if layer is None:
        return None, None, 0
    stored_bits = 8 * _dtype_bytes(getattr(layer, "variable_dtype", "float32"))
    input_q = getattr(layer, "input_quantizer", None)
    kernel_q = getattr(layer, "kernel_quantizer", None)
    kernel = getattr(layer, "kernel", None) if params else None
    kernel_bits = getattr(kernel_q, "bits", None) or stored_bits
    kernel_size = math.prod(kernel.shape) if kernel is not None else 0
    weight_bytes = (kernel_size * kernel_bits
                    + (params - kernel_size) * stored_bits) / 8
    return (getattr(input_q, "bits", None), kernel_bits if params else None,
            weight_bytes)


def _merge_states(states):
    """(rf, jump) where branches meet: the largest of each, per axis."""
    return (tuple(max(s[0][i] for s in states) for i in range(2)),
            tuple(max(s[1][i] for s in states) for i in range(2)))


class _Walker:
    def __init__(self):
        self.rows = []

    def add_row(self, layer, name, kind, in_shapes, out_shape, state, params):
        out = tuple(out_shape[1:])
        elements = 0 if isinstance(layer, VIEW_LAYERS) else math.prod(
            n for n in out if n is not None)
        compute = getattr(layer, "compute_dtype", "float32")
        macs = multiply_adds(layer, in_shapes[0], out_shape) if layer else 0
        input_bits, weight_bits, weight_bytes = _bit_widths(layer, params)
        self.rows.append(LayerRow(name, kind, out, params, macs, elements,
                                  elements * _dtype_bytes(compute), *state,
                                  input_bits, weight_bits, weight_bytes))

    def layer(self, layer, in_shapes, states, prefix):
        """Analyzes one layer call; returns its output's (rf, jump)."""
        name = f"{prefix}{layer.name}"
        rf, jump = _merge_states(states)
        if isinstance(layer, keras.Model):
            return self.model(layer, states, f"{name}/")
        if hasattr(layer, "analysis_graph"):
            return self.composite(layer, in_shapes[0], (rf, jump), f"{name}/")
        shape_arg = in_shapes[0] if len(in_shapes) == 1 else list(in_shapes)
        out_shape = layer.compute_output_shape(shape_arg)
        state = receptive_field_step(layer, rf, jump, in_shapes[0])
        self.add_row(layer, name, type(layer).__name__, in_shapes, out_shape,
                     state, layer.count_params())
        return state

    def chain(self, layers, shape, state, prefix):
        for layer in layers:
            new_state = self.layer(layer, [shape], [state], prefix)
            shape, state = layer.compute_output_shape(shape), new_state
        return shape, state

    def composite(self, layer, in_shape, state, prefix):
        graph = layer.analysis_graph()
        results = [self.chain(branch, in_shape, state, prefix)
                   for branch in graph["branches"]]
        shape, state = results[0]
        if graph["merge"]:
            state = _merge_states([s for _, s in results])
            if graph["merge"] == "concat":
                shape = tuple(shape[:-1]) + (sum(sh[-1] for sh, _ in results),)
            self.add_row(None, f"{prefix}{graph['merge']}",
                         graph["merge"].capitalize(), [in_shape], shape, state, 0)
        return self.chain(graph["post"], shape, state, prefix)[1]

    def model(self, model, in_states, prefix):
        """Walks a functional (or Sequential) model's graph in order."""
        graph = getattr(model, "_functional", model)
        states = {id(t): s for t, s in zip(graph.inputs, in_states)}
        for depth in sorted(graph._nodes_by_depth, reverse=True):
            for node in graph._nodes_by_depth[depth]:
                layer = node.operation
                if isinstance(layer, keras.layers.InputLayer):
                    continue
                ins = node.input_tensors
                state = self.layer(layer, [tuple(t.shape) for t in ins],
                                   [states[id(t)] for t in ins], prefix)
                for t in node.output_tensors:
                    states[id(t)] = state
        return states[id(graph.outputs[0])]


def summarize(model, batch_size=1, optimizer_slots=2):
    """Analyzes a built Keras model layer by layer.

    Works on functional and Sequential models, models nested in them, and
    this package's composite layers (StackedConv2D, Bottleneck,
    InceptionModule, ...), which are expanded into their convolutions.
    Receptive fields assume the input pixels are the units (rf 1, jump 1).

    Args:
        model: a built `keras.Model` with a known input shape.
        batch_size: batch for the training-memory estimate.
        optimizer_slots: extra copies of the trainable weights the optimizer
            keeps (2 for Adam, 1 for SGD with momentum, 0 for plain SGD).

    Returns:
        A `Summary`: `rows`, totals, `to_markdown()`, `to_csv()`, `str()`.
    """
    try:
        known = bool(model.inputs)
    except AttributeError:  # a Sequential model that was never built
        known = False
    if not known:
        raise ValueError("summarize() needs a model with a known input "
                         "shape: build it with keras.Input(...) first.")
    walker = _Walker()
    start = [((1, 1), (1, 1))] * len(model.inputs)
    walker.model(model, start, "")
    nbytes = lambda weights: sum(math.prod(w.shape) * _dtype_bytes(w.dtype)
                                 for w in weights)
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return Summary(model_name=model.name, rows=walker.rows,
                   input_shape=tuple(model.inputs[0].shape[1:]),
                   input_bytes_per_element=_dtype_bytes(model.inputs[0].dtype),
                   params=model.count_params(), trainable_params=trainable,
                   param_bytes=nbytes(model.weights),
                   trainable_param_bytes=nbytes(model.trainable_weights),
                   batch_size=batch_size,
                   optimizer_slots=optimizer_slots)
