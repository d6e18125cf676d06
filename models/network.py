"""LMFlowNet topology: configuration (YAML), layer list and their shapes.

The network is described by a handful of parameters (resolution, depth, channel widths, the
division of work) in a YAML file; :func:`build_layers` expands them into the layer list, every
layer with its input operation, kernel, channel counts, weight kind, output kind and placement
(host or accelerator).

Two divisions of the same network, chosen by the configuration key ``ends``:

* ``ends: quantized`` (the default): every layer runs on the accelerator. conv1 reads the frame
  pair as thermometer codes (:func:`models.formats.frame_pair_codes`, 32 code channels a pixel),
  the coarse flow predictions are quantized to ``2 * flow_codes`` code channels (a uniform flow
  quantizer of ``3 * flow_codes + 1`` levels over ``[-flow_range, flow_range]``), every
  ``upsample_flow`` and ``cast_conv`` ends in batch norm and the 2-bit activation, and
  ``predict_flow2`` has binary multi-plane weights (``predict_planes`` planes) whose raw
  accumulators the host combines into the flow;
* ``ends: float``: conv1, every ``upsample_flow`` and ``predict_flow2`` run in float on the
  host (Blueoil's division), as described below.

Topology for depth ``D`` (``D = 3`` is Blueoil's ``lm_flownet_3_q_quarter``), float ends:

* ``conv1``: space_to_depth(frames) -> 3x3 conv, float weights, BN, act (host);
* ``conv{l}`` for ``l = 2..D``: space_to_depth(previous level) -> 3x3 conv, BN, act;
  ``conv{l}_1`` for ``l >= 3``: 3x3 conv, BN, act;
* ``predict_flow{D}``: 3x3 conv to 2 channels + bias, raw accumulators;
* for ``l = D-1 .. 2``:
  ``upsample_flow{l+1}``: x2 upsampling of ``predict_flow{l+1}`` (dequantized on the host),
  3x3 conv 2->2, BN, act (host: its input is float);
  ``deconv{l}``: x2 upsampling of the level above (``conv{D}_1`` or ``cast_conv{l+1}``),
  3x3 conv + bias, BN, act;
  ``cast_conv{l}`` (``cast_conv`` for ``l = 2``): 1x1 conv + bias of the concat
  ``[conv{l}(_1), deconv{l}, upsample_flow{l+1}]``; raw accumulators at ``l = 2``, BN and act
  above (so the levels above 2 stay on the accelerator);
  ``predict_flow{l}``: 3x3 conv to 2 channels + bias of ``cast_conv{l}``; raw accumulators on
  the accelerator for ``l > 2``; ``predict_flow2`` has float weights, runs on the host and is
  multiplied by ``flow_scale`` and upsampled x4 to the input resolution.

With quantized ends the topology is the same but for these layers:

* ``conv1``: space_to_depth of the 32 thermometer code channels (128 channels), binary 3x3
  conv, BN, act (accelerator; its source is the frame-pair image);
* ``predict_flow{l}`` feeding an ``upsample_flow{l}`` (every ``l > 2``): binary weights + bias
  of 2 channels, output the flow quantizer's codes: ``2 * flow_codes`` channels, channel
  ``c * flow_codes + i`` is code ``i`` of flow component ``c`` (:attr:`Layer.flow_codes`);
* ``upsample_flow{l+1}``: x2 upsampling of those codes, 3x3 conv ``2 * flow_codes -> 2``, BN,
  act (accelerator);
* ``cast_conv``: BN and act at level 2 too;
* ``predict_flow2``: binary multi-plane weights, ``2 * predict_planes`` raw-accumulator
  channels, channel ``c * predict_planes + p`` is plane ``p`` of flow component ``c``
  (:attr:`Layer.planes`); the host computes the flow from them.

A layer runs on the accelerator when its weights are binary and every input is a 2-bit code.
"""

from dataclasses import dataclass, field
import math
import os

import yaml

from .conv import acc_bound
from .errors import ConfigError
from .formats import FRAME_CODE_CHANNELS, FRAME_COLORS

__all__ = [
    "NetworkConfig", "Layer", "load_network_config", "default_config_path", "build_layers",
    "INPUT", "OP_IDENTITY", "OP_SPACE_TO_DEPTH", "OP_UPSAMPLE",
    "OUT_CODES", "OUT_RAW", "OUT_FLOAT", "CONFIG_DIR", "ENDS_QUANTIZED", "ENDS_FLOAT", "ENDS",
    "DEFAULT_FLOW_CODES", "DEFAULT_FLOW_RANGE", "DEFAULT_PREDICT_PLANES", "float_ends_config_path",
]

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "configs")

#: Name of the network input (two frames stacked on channels) in layer input lists.
INPUT = "input"

OP_IDENTITY = "identity"
OP_SPACE_TO_DEPTH = "space_to_depth"
OP_UPSAMPLE = "upsample"

#: The layer's output is re-quantized to 2-bit codes (BN + activation quantizer).
OUT_CODES = "codes"
#: The layer's output is the raw accumulator (dequantized by the host: acc*alpha*2/3 + bias).
OUT_RAW = "raw"
#: The layer's output is float (host float layer without activation: the final flow).
OUT_FLOAT = "float"


#: ``ends``: every layer on the accelerator (thermometer input, quantized flow, multi-plane
#: predict_flow2).
ENDS_QUANTIZED = "quantized"
#: ``ends``: conv1, upsample_flow* and predict_flow2 in float on the host.
ENDS_FLOAT = "float"
ENDS = (ENDS_QUANTIZED, ENDS_FLOAT)

#: Default ``flow_codes`` K: 2-bit code channels per flow component (3K + 1 = 13 levels).
DEFAULT_FLOW_CODES = 4
#: Default ``flow_range`` R, in predict-flow units (flow / flow_scale): the 99.9th percentile of
#: ``|flow| / flow_scale`` at level 3 of the synthetic training pairs is 0.75 (the largest 0.95).
DEFAULT_FLOW_RANGE = 0.75
#: Default ``predict_planes`` M: binary planes of predict_flow2's weights.
DEFAULT_PREDICT_PLANES = 4

_QUANTIZED_KEYS = ("flow_codes", "flow_range", "predict_planes")


def default_config_path():
    """Path of the default network configuration (D = 3, 96x128, quantized ends)."""
    return os.path.join(CONFIG_DIR, "lmflownet_d3_96x128.yaml")


def float_ends_config_path():
    """Path of the default network with float ends (conv1, upsample_flow3, predict_flow2 on the
    host)."""
    return os.path.join(CONFIG_DIR, "lmflownet_d3_96x128_float_ends.yaml")


@dataclass(frozen=True)
class NetworkConfig:
    """Parameters of one LMFlowNet instance (see the module docstring).

    Members
    -------
    name : str
    height, width, in_channels : int
        Input resolution and channel count (6: two RGB frames).
    depth : int
        Number of space_to_depth levels, 3..6.
    channels : tuple of int
        Output channels of conv1 .. conv{depth}.
    deconv_channels : dict of int -> int
        Output channels of deconv{l} for l = depth-1 .. 2.
    bn_eps, flow_scale, leaky_relu : float
    ends : str
        ``ENDS_QUANTIZED`` (every layer on the accelerator) or ``ENDS_FLOAT``.
    flow_codes : int or None
        ``K``: code channels per flow component of the quantized coarse flows (quantized ends).
    flow_range : float or None
        ``R``: the flow quantizer's range ``[-R, R]`` in predict-flow units (quantized ends).
    predict_planes : int or None
        ``M``: binary planes of predict_flow2's weights (quantized ends).
    source : str
        Where the configuration came from (file path or ``"<dict>"``), used in error messages.
    """

    name: str
    height: int
    width: int
    in_channels: int
    depth: int
    channels: tuple
    deconv_channels: dict
    bn_eps: float = 0.001
    flow_scale: float = 20.0
    leaky_relu: float = 0.1
    ends: str = ENDS_QUANTIZED
    flow_codes: int = DEFAULT_FLOW_CODES
    flow_range: float = DEFAULT_FLOW_RANGE
    predict_planes: int = DEFAULT_PREDICT_PLANES
    source: str = field(default="<dict>", compare=False)

    def __post_init__(self):
        if self.ends not in ENDS:
            raise ConfigError(f"{self.source}: ends: must be one of {', '.join(ENDS)}, not {self.ends!r}")
        defaults = (DEFAULT_FLOW_CODES, DEFAULT_FLOW_RANGE, DEFAULT_PREDICT_PLANES)
        for key, default in zip(_QUANTIZED_KEYS, defaults):
            if self.ends == ENDS_FLOAT:
                object.__setattr__(self, key, None)      # the float ends have no such layer
            elif getattr(self, key) is None:
                object.__setattr__(self, key, default)

    @property
    def quantized_ends(self):
        """Every layer runs on the accelerator (``ends: quantized``)."""
        return self.ends == ENDS_QUANTIZED

    @classmethod
    def from_dict(cls, data, source="<dict>"):
        """Validate a configuration dictionary (as read from YAML).

        Raises
        ------
        ConfigError
            Naming ``source`` and the key, for an unknown or missing key, a wrong type or an
            impossible value.
        """
        def fail(key, msg):
            raise ConfigError(f"{source}: {key}: {msg}")

        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the configuration must be a mapping, not {type(data).__name__}")
        known = {"name", "input", "depth", "channels", "deconv_channels", "bn_eps", "flow_scale",
                 "leaky_relu", "ends", *_QUANTIZED_KEYS}
        for key in data:
            if key not in known:
                fail(key, f"unknown key (expected one of {', '.join(sorted(known))})")
        for key in ("input", "depth", "channels", "deconv_channels"):
            if key not in data:
                fail(key, "missing")

        def pos_int(key, value, minimum=1):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                fail(key, f"must be an integer >= {minimum}, not {value!r}")
            return value

        def number(key, value, minimum=None):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                fail(key, f"must be a number, not {value!r}")
            if minimum is not None and not value > minimum:
                fail(key, f"must be > {minimum}, not {value!r}")
            return float(value)

        inp = data["input"]
        if not isinstance(inp, dict):
            fail("input", f"must be a mapping with height, width, channels, not {inp!r}")
        for key in inp:
            if key not in ("height", "width", "channels"):
                fail(f"input.{key}", "unknown key (expected height, width, channels)")
        for key in ("height", "width"):
            if key not in inp:
                fail(f"input.{key}", "missing")
        height = pos_int("input.height", inp["height"])
        width = pos_int("input.width", inp["width"])
        in_channels = pos_int("input.channels", inp.get("channels", 6))
        depth = pos_int("depth", data["depth"], 3)
        if depth > 6:
            fail("depth", f"must be 3..6, not {depth}")
        step = 1 << depth
        if height % step or width % step:
            fail("input", f"height and width must be multiples of 2**depth = {step}, not {height}x{width}")
        channels = data["channels"]
        if not isinstance(channels, list) or len(channels) != depth:
            fail("channels", f"must be a list of {depth} channel counts (conv1..conv{depth}), not {channels!r}")
        channels = tuple(pos_int(f"channels[{i}]", c) for i, c in enumerate(channels))
        deconv = data["deconv_channels"]
        expected = list(range(depth - 1, 1, -1))
        if isinstance(deconv, dict):  # JSON (weights manifests) stores the levels as strings
            deconv = {int(k) if isinstance(k, str) and k.isdigit() else k: v for k, v in deconv.items()}
        if not isinstance(deconv, dict) or sorted(deconv, key=str) != sorted(expected, key=str):
            fail("deconv_channels", f"must map each level {expected} to a channel count, not {deconv!r}")
        deconv = {int(k): pos_int(f"deconv_channels.{k}", v) for k, v in deconv.items()}
        name = data.get("name", os.path.splitext(os.path.basename(source))[0])
        if not isinstance(name, str) or not name:
            fail("name", f"must be a non-empty string, not {name!r}")
        ends = data.get("ends", ENDS_QUANTIZED)
        if ends not in ENDS:
            fail("ends", f"must be one of {', '.join(ENDS)}, not {ends!r}")
        quantized = {}
        if ends == ENDS_FLOAT:
            for key in _QUANTIZED_KEYS:
                if key in data:
                    fail(key, f"only with ends: {ENDS_QUANTIZED} (this configuration has ends: {ENDS_FLOAT})")
        else:
            if in_channels != FRAME_COLORS:
                fail("input.channels", f"must be {FRAME_COLORS} (two RGB frames, the frame-pair format) with "
                                       f"ends: {ENDS_QUANTIZED}, not {in_channels}")
            quantized = dict(
                flow_codes=pos_int("flow_codes", data.get("flow_codes", DEFAULT_FLOW_CODES)),
                flow_range=number("flow_range", data.get("flow_range", DEFAULT_FLOW_RANGE), 0.0),
                predict_planes=pos_int("predict_planes", data.get("predict_planes", DEFAULT_PREDICT_PLANES)))
            if not math.isfinite(quantized["flow_range"]):
                fail("flow_range", f"must be finite, not {data.get('flow_range')!r}")
        return cls(
            name=name, height=height, width=width, in_channels=in_channels, depth=depth,
            channels=channels, deconv_channels=deconv,
            bn_eps=number("bn_eps", data.get("bn_eps", 0.001), 0.0),
            flow_scale=number("flow_scale", data.get("flow_scale", 20.0), 0.0),
            leaky_relu=number("leaky_relu", data.get("leaky_relu", 0.1)),
            ends=ends, **quantized, source=source)

    def to_dict(self):
        """The configuration as a YAML-ready dictionary (inverse of :meth:`from_dict`)."""
        d = {"name": self.name,
             "input": {"height": self.height, "width": self.width, "channels": self.in_channels},
             "depth": self.depth, "channels": list(self.channels),
             "deconv_channels": dict(self.deconv_channels), "bn_eps": self.bn_eps,
             "flow_scale": self.flow_scale, "leaky_relu": self.leaky_relu, "ends": self.ends}
        if self.quantized_ends:
            d.update(flow_codes=self.flow_codes, flow_range=self.flow_range, predict_planes=self.predict_planes)
        return d

    def describe(self):
        """One line for messages: name, resolution, depth and division."""
        return f"{self.name!r} ({self.height}x{self.width}, depth {self.depth}, {self.ends} ends)"

    def with_resolution(self, height, width):
        """The same network at another input resolution (validated)."""
        d = self.to_dict()
        d["input"]["height"], d["input"]["width"] = height, width
        return NetworkConfig.from_dict(d, source=self.source)


def load_network_config(path=None):
    """Read and validate a network configuration YAML file (default: D = 3, 96x128).

    Raises
    ------
    ConfigError
        If the file is missing or unreadable, is not YAML, or fails validation; the message
        names the file and the key.
    """
    path = default_config_path() if path is None else os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read network configuration: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}".replace("\n", " ")) from None
    return NetworkConfig.from_dict(data, source=path)


@dataclass(frozen=True)
class Layer:
    """One convolution layer of the network.

    Members
    -------
    name : str
    inputs : tuple of str
        Source tensors (layer names or ``INPUT``), concatenated on channels in this order.
    input_op : str
        ``OP_IDENTITY``, ``OP_SPACE_TO_DEPTH`` (block 2) or ``OP_UPSAMPLE`` (nearest x2),
        applied to the concatenated sources.
    kernel : int
        1 or 3 (stride 1, SAME zero padding).
    c_in, c_out : int
    height, width : int
        Output (= conv input) resolution.
    binary : bool
        Binary channel-wise weights (else float weights).
    bias : bool
    bn : bool
        Batch norm followed by the activation (quantizer in the quantized model).
    output : str
        ``OUT_CODES``, ``OUT_RAW`` or ``OUT_FLOAT`` in the quantized model.
    accel : bool
        Runs on the accelerator in the quantized model.
    flow_codes : int
        ``K > 0``: the output is the flow quantizer's codes (``c_out = 2 * K`` code channels of
        the 2 flow components, channel-major), no batch norm; 0 otherwise.
    flow_range : float
        ``R`` of that flow quantizer (``[-R, R]`` in predict-flow units); 0 otherwise.
    planes : int
        ``M > 0``: binary multi-plane weights, raw accumulators of ``c_out = 2 * M`` channels
        (plane ``p`` of component ``c`` in channel ``c * M + p``); 0 otherwise.
    """

    name: str
    inputs: tuple
    input_op: str
    kernel: int
    c_in: int
    c_out: int
    height: int
    width: int
    binary: bool
    bias: bool
    bn: bool
    output: str
    accel: bool
    flow_codes: int = 0
    flow_range: float = 0.0
    planes: int = 0

    @property
    def param_out(self):
        """Output channels of the layer's parameters (weights, bias, batch norm): ``c_out``, or
        the 2 flow components of a flow-code or multi-plane layer."""
        return self.c_out // (self.flow_codes or self.planes or 1)

    @property
    def acc_bound(self):
        """Largest ``|acc|`` of this layer's integer convolution."""
        return acc_bound(self.kernel, self.c_in)

    @property
    def macs(self):
        """Multiply-accumulates per frame."""
        return self.height * self.width * self.kernel * self.kernel * self.c_in * self.c_out

    def param_shapes(self):
        """Shapes of this layer's parameters in a weights file, by parameter name."""
        o = self.param_out
        shapes = {"weight": (self.kernel, self.kernel, self.c_in, o)}
        if self.bias:
            shapes["bias"] = (o,)
        if self.bn:
            for p in ("gamma", "beta", "mean", "var"):
                shapes[p] = (o,)
        return shapes


def build_layers(cfg):
    """Expand a :class:`NetworkConfig` into its layers, in execution order."""
    layers = {}
    quant = cfg.quantized_ends
    # With quantized ends the network input is the frame pair as the accelerator's loader sees it.
    shapes = {INPUT: (cfg.height, cfg.width, FRAME_CODE_CHANNELS if quant else cfg.in_channels)}
    kinds = {INPUT: OUT_CODES if quant else OUT_FLOAT}

    def add(name, inputs, op, kernel, c_out, *, binary=True, bias=False, bn=True, output=None, flow_codes=0,
            planes=0):
        hs = {shapes[i][:2] for i in inputs}
        assert len(hs) == 1, (name, hs)
        (h, w), = hs
        c_in = sum(shapes[i][2] for i in inputs)
        if op == OP_SPACE_TO_DEPTH:
            h, w, c_in = h // 2, w // 2, c_in * 4
        elif op == OP_UPSAMPLE:
            h, w = h * 2, w * 2
        if output is None:
            output = OUT_CODES if bn else OUT_RAW
        accel = binary and all(kinds[i] == OUT_CODES for i in inputs)
        if not binary and not bn:
            output = OUT_FLOAT
        layers[name] = Layer(name=name, inputs=tuple(inputs), input_op=op, kernel=kernel,
                             c_in=c_in, c_out=c_out, height=h, width=w, binary=binary, bias=bias,
                             bn=bn, output=output, accel=accel, flow_codes=flow_codes,
                             flow_range=cfg.flow_range if flow_codes else 0.0, planes=planes)
        shapes[name] = (h, w, c_out)
        kinds[name] = output

    def predict_flow(name, source):
        if quant:   # the flow quantizer's codes feed the upsample_flow on the accelerator
            add(name, [source], OP_IDENTITY, 3, 2 * cfg.flow_codes, bias=True, bn=False, output=OUT_CODES,
                flow_codes=cfg.flow_codes)
        else:
            add(name, [source], OP_IDENTITY, 3, 2, bias=True, bn=False)

    d = cfg.depth
    add("conv1", [INPUT], OP_SPACE_TO_DEPTH, 3, cfg.channels[0], binary=quant)
    prev = "conv1"
    for lvl in range(2, d + 1):
        add(f"conv{lvl}", [prev], OP_SPACE_TO_DEPTH, 3, cfg.channels[lvl - 1])
        prev = f"conv{lvl}"
        if lvl >= 3:
            add(f"conv{lvl}_1", [prev], OP_IDENTITY, 3, cfg.channels[lvl - 1])
            prev = f"conv{lvl}_1"
    feature = prev
    predict_flow(f"predict_flow{d}", feature)
    for lvl in range(d - 1, 1, -1):
        skip = f"conv{lvl}_1" if lvl >= 3 else f"conv{lvl}"
        add(f"upsample_flow{lvl + 1}", [f"predict_flow{lvl + 1}"], OP_UPSAMPLE, 3, 2)
        add(f"deconv{lvl}", [feature], OP_UPSAMPLE, 3, cfg.deconv_channels[lvl], bias=True)
        cast = "cast_conv" if lvl == 2 else f"cast_conv{lvl}"
        c_cat = shapes[skip][2] + cfg.deconv_channels[lvl] + 2
        add(cast, [skip, f"deconv{lvl}", f"upsample_flow{lvl + 1}"], OP_IDENTITY, 1, c_cat,
            bias=True, bn=(lvl > 2 or quant))
        if lvl > 2:
            predict_flow(f"predict_flow{lvl}", cast)
        elif quant:
            add("predict_flow2", [cast], OP_IDENTITY, 3, 2 * cfg.predict_planes, bias=True, bn=False,
                output=OUT_RAW, planes=cfg.predict_planes)
        else:
            add("predict_flow2", [cast], OP_IDENTITY, 3, 2, binary=False, bias=True, bn=False)
        feature = cast
    return list(layers.values())
