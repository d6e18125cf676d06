"""Build the accelerator from a hardware configuration (:mod:`models.hwconfig`)."""

from models.hwconfig import check_target, load_hw_config

from .accelerator import Accelerator

__all__ = ["build_accelerator"]


def build_accelerator(cfg=None):
    """The :class:`~hw.accelerator.Accelerator` of a hardware configuration (a
    :class:`~models.hwconfig.HardwareConfig`, a name or path, or ``None`` for the default).

    Raises
    ------
    models.errors.ConfigError
        In one line, if the configuration cannot serve the accelerator target.
    """
    cfg = check_target(load_hw_config(cfg), "accelerator")
    return Accelerator(**cfg.accelerator_kwargs())
