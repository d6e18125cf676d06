"""The numpy golden LMFlowNet: quantizers, threshold folding, W1A2 convolutions, formats, network.

Pure numpy (no simulator imports). Everything the gateware, the testbenches and the host layer
share (packing, threshold tables, descriptors) is defined here, once.
"""

from .errors import ConfigError, FormatError, LMFlowError, WeightsError
from .quant import (ACT_BITS, ACT_LEVELS, ACT_MAX, ACT_STEP, binarize_weights, dequantize_activations,
                    dequantize_weights, quantize_activations)
from .thresholds import (DIR_CONSTANT, DIR_CONSTANT_ALT, DIR_DECREASING, DIR_INCREASING, ThresholdTable,
                         apply_thresholds, fold_thresholds, threshold_bits)
from .conv import acc_bound, conv_float, conv_w1a2_bitplane, conv_w1a2_direct
from .ops import concat_channels, space_to_depth, upsample_nearest
from .network import Layer, NetworkConfig, build_layers, default_config_path, load_network_config
from .weights import load_weights, save_weights, validate_weights
from .golden import AccelJob, FloatModel, HostStep, QuantizedModel, QuantizedResult
from .generate import random_frame_pairs, random_weights
from .flow import endpoint_error, flow_to_color, read_flo, resize_flow, write_flo, write_flow_png
from .synthetic import SyntheticConfig, make_batch, make_pair
from .chairs import FlyingChairs
from .pretrained import (default_float_ends_weights_path, default_float_weights_path, default_weights_path,
                         load_default_float_weights, load_default_weights)

__all__ = [
    "ConfigError", "FormatError", "LMFlowError", "WeightsError",
    "ACT_BITS", "ACT_LEVELS", "ACT_MAX", "ACT_STEP", "binarize_weights", "dequantize_activations",
    "dequantize_weights", "quantize_activations",
    "DIR_CONSTANT", "DIR_CONSTANT_ALT", "DIR_DECREASING", "DIR_INCREASING", "ThresholdTable", "apply_thresholds",
    "fold_thresholds", "threshold_bits",
    "acc_bound", "conv_float", "conv_w1a2_bitplane", "conv_w1a2_direct",
    "concat_channels", "space_to_depth", "upsample_nearest",
    "Layer", "NetworkConfig", "build_layers", "default_config_path", "load_network_config",
    "load_weights", "save_weights", "validate_weights",
    "AccelJob", "FloatModel", "HostStep", "QuantizedModel", "QuantizedResult",
    "random_frame_pairs", "random_weights",
    "endpoint_error", "flow_to_color", "read_flo", "resize_flow", "write_flo", "write_flow_png",
    "SyntheticConfig", "make_batch", "make_pair", "FlyingChairs",
    "default_float_ends_weights_path", "default_float_weights_path", "default_weights_path",
    "load_default_float_weights", "load_default_weights",
]
