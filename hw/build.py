"""Build the accelerator from a hardware configuration.

The hardware configuration (``hw/configs/*.yaml``, :mod:`hw.config`) names the PE array; the
engine's buffers and bursts come from its ``engine`` section when present, else from
:data:`ENGINE_DEFAULTS`.
"""

from models.engine import EngineParams

from .accelerator import Accelerator
from .config import load_hw_config

__all__ = ["ENGINE_DEFAULTS", "accelerator_kwargs", "engine_params", "build_accelerator"]

#: Engine sizes for configurations that do not set them: the activation buffer holds the
#: largest source tensor of the default network (48x64x64 or 24x32x256 codes: 3072 words of
#: 128 bits, rounded up to a power of two), the weight buffer one tile of the widest layer
#: (1024 input channels, 3x3: 144 words) in each of its two banks.
ENGINE_DEFAULTS = {"act_buffer_words": 4096, "weight_buffer_words": 256, "max_burst": 64}


def accelerator_kwargs(cfg=None):
    """Keyword arguments of :class:`~hw.accelerator.Accelerator` for a hardware configuration
    (a :class:`~hw.config.HardwareConfig`, a path or ``None`` for the default)."""
    if cfg is None or isinstance(cfg, str):
        cfg = load_hw_config(cfg)
    engine = dict(ENGINE_DEFAULTS)
    engine.update(getattr(cfg, "engine", None) or {})
    return dict(pe_count=cfg.pe_count, simd_lanes=cfg.simd_lanes, acc_bound=cfg.acc_bound,
                popcount_stages=cfg.popcount_stages, **engine)


def engine_params(cfg=None):
    """The :class:`models.engine.EngineParams` the host layer compiles programs for."""
    kw = accelerator_kwargs(cfg)
    return EngineParams(pe_count=kw["pe_count"], simd_lanes=kw["simd_lanes"], acc_bound=kw["acc_bound"],
                        act_buffer_words=kw["act_buffer_words"], weight_buffer_words=kw["weight_buffer_words"])


def build_accelerator(cfg=None):
    """The :class:`~hw.accelerator.Accelerator` of a hardware configuration."""
    return Accelerator(**accelerator_kwargs(cfg))
