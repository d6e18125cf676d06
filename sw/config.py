"""The engine configuration the host layer compiles for and expects to find on the device.

The host reads the same hardware configuration files and rules as the gateware
(:mod:`models.hwconfig`), so gateware and host cannot disagree; nothing here imports the
gateware.
"""

from models.hwconfig import check_target, load_hw_config

__all__ = ["default_engine_params", "engine_params_for"]


def engine_params_for(hw_config=None):
    """:class:`models.engine.EngineParams` of a hardware configuration (name, path,
    :class:`~models.hwconfig.HardwareConfig` or ``None`` for the default).

    Raises
    ------
    models.errors.ConfigError
        If the file is bad or the configuration describes no buildable accelerator.
    """
    return check_target(load_hw_config(hw_config), "accelerator").engine_params


def default_engine_params():
    """The default accelerator's parameters.

    Returns
    -------
    models.engine.EngineParams
    """
    return engine_params_for(None)
