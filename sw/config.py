"""The engine configuration the host layer compiles for and expects to find on the device.

:func:`default_engine_params` is the one place on the host side that says which accelerator the
host talks to; it is derived from the hardware configuration YAML (``hw/configs/default.yaml``,
through :func:`hw.build.engine_params`), so gateware and host cannot disagree.
"""

__all__ = ["default_engine_params", "engine_params_for"]


def engine_params_for(hw_config=None):
    """:class:`models.engine.EngineParams` of a hardware configuration (path, object or ``None``
    for the default)."""
    from hw.build import engine_params
    return engine_params(hw_config)


def default_engine_params():
    """The default accelerator's parameters (P = 32 PEs, S = 64 lanes, 3x3x1024 accumulator bound,
    4096-word activation buffer, 256-word weight buffers).

    Returns
    -------
    models.engine.EngineParams
    """
    return engine_params_for(None)
