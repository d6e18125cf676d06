"""Exceptions of the host layer.

All derive from :class:`models.errors.LMFlowError`: their message is one line naming the
address, register, layer, file or backend at fault, so the command line prints it as it is.
"""

from models.errors import LMFlowError

__all__ = ["HostError", "TransportError", "DeviceUnavailableError", "BackendError", "UnknownBackendError",
           "AcceleratorError", "AcceleratorTimeoutError"]


class HostError(LMFlowError):
    """Base class of the host layer's errors."""


class TransportError(HostError):
    """A register or device-memory access is out of bounds, misaligned or failed."""


class DeviceUnavailableError(TransportError):
    """The device behind a transport cannot be reached: not on the board, no permission, no driver."""


class BackendError(HostError):
    """A backend exists but cannot be used in this build or on this machine."""


class UnknownBackendError(BackendError, ValueError):
    """A backend name that the registry does not know (the message lists the known ones)."""


class AcceleratorError(HostError):
    """The accelerator is not the expected one, reported an error, or stopped early."""


class AcceleratorTimeoutError(AcceleratorError):
    """The accelerator did not report done within the driver's timeout."""
