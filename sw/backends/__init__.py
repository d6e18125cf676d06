"""The backends: one :class:`sw.transport.Transport` each, chosen by name.

========== ================================ ==========================================
name       module                           device
========== ================================ ==========================================
golden     :mod:`sw.backends.golden`        functional model of the accelerator (numpy)
rtl        ``sw.backends.rtl``              the generated Verilog in cocotb (Verilator)
de10nano   :mod:`sw.backends.de10nano`      the board: /dev/mem or udmabuf mappings
========== ================================ ==========================================

Each backend module provides ``create_transport(params, **kw)``; modules are imported only when
their backend is asked for, so a backend's dependencies (a simulator, the board's device files)
are needed only by its users.
"""

import importlib

from ..errors import BackendError, UnknownBackendError

__all__ = ["BACKENDS", "check_backend", "get_transport"]

#: Backend name -> module providing ``create_transport(params, **kw)``.
BACKENDS = {
    "golden": "sw.backends.golden",
    "rtl": "sw.backends.rtl",
    "de10nano": "sw.backends.de10nano",
}


def check_backend(name):
    """Return ``name`` if it is a backend.

    Raises
    ------
    UnknownBackendError
        Listing the known backends.
    """
    if name not in BACKENDS:
        raise UnknownBackendError(f"unknown backend {name!r} (known: {', '.join(sorted(BACKENDS))})")
    return name


def get_transport(name, params, **kw):
    """Open the transport of a backend.

    Parameters
    ----------
    name : str
        ``"golden"``, ``"rtl"`` or ``"de10nano"``.
    params : models.engine.EngineParams
        The accelerator configuration (the functional model and the simulation build from it).
    **kw
        Passed to the backend's constructor.

    Raises
    ------
    UnknownBackendError
        If ``name`` is not a backend (the message lists the known ones).
    BackendError
        If the backend's module is not part of this build or cannot be imported (a missing
        dependency, named in the message).
    DeviceUnavailableError
        If the backend's device cannot be opened (e.g. de10nano off the board).
    """
    module_name = BACKENDS[check_backend(name)]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise BackendError(f"the {name} backend cannot be loaded: {e}") from None
        raise BackendError(f"the {name} backend is not available in this build ({module_name} is missing)") from None
    except ImportError as e:
        raise BackendError(f"the {name} backend cannot be loaded: {e}") from None
    return module.create_transport(params, **kw)
