"""The engine configuration the host layer compiles for and expects to find on the device.

:func:`default_engine_params` is the one place that says which accelerator the host talks to.
It will be derived from the hardware configuration YAML (``hw/configs/``) once that is final;
callers never build :class:`models.engine.EngineParams` themselves.
"""

from models.engine import EngineParams

__all__ = ["default_engine_params"]


def default_engine_params():
    """The default accelerator: P = 32 PEs, S = 64 lanes, 3x3x1024 accumulator bound, 4096-word
    activation buffer and 256-word weight buffer.

    Returns
    -------
    models.engine.EngineParams
    """
    return EngineParams(pe_count=32, simd_lanes=64, acc_bound=3 * 9 * 1024, act_buffer_words=4096,
                        weight_buffer_words=256)
