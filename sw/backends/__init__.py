"""The backends: one :class:`sw.transport.Transport` each, chosen by name.

========== ================================ ==========================================
name       module                           device
========== ================================ ==========================================
golden     :mod:`sw.backends.golden`        functional model of the accelerator (numpy)
de10nano   :mod:`sw.backends.de10nano`      the board: /dev/mem or udmabuf mappings
rtl        ``sim.rtl_backend``              the generated Verilog in cocotb (Verilator)
========== ================================ ==========================================

The host's own backends are listed here; others register through the ``lmflow.backends``
entry-point group (``name = "module:create_transport"``): the simulation package registers
``rtl`` that way, so the host names no gateware or simulator module and runs without them.
Each backend provides ``create_transport(params, **kw)``; its module is imported only when the
backend is asked for, so a backend's dependencies (a simulator, the board's device files) are
needed only by its users.
"""

import importlib
from importlib import metadata

from ..errors import BackendError, UnknownBackendError

__all__ = ["BACKENDS", "ENTRY_POINT_GROUP", "backends", "check_backend", "get_transport"]

#: The host's own backends: name -> module providing ``create_transport(params, **kw)``.
BACKENDS = {
    "golden": "sw.backends.golden",
    "de10nano": "sw.backends.de10nano",
}
#: Entry-point group of the backends other packages provide.
ENTRY_POINT_GROUP = "lmflow.backends"


def backends():
    """Every backend available here: name -> ``"module"`` or ``"module:function"``."""
    found = dict(BACKENDS)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def check_backend(name):
    """Return ``name`` if it is a backend.

    Raises
    ------
    UnknownBackendError
        Listing the known backends.
    """
    known = backends()
    if name not in known:
        raise UnknownBackendError(f"unknown backend {name!r} (known: {', '.join(sorted(known))})")
    return name


def get_transport(name, params, **kw):
    """Open the transport of a backend.

    Parameters
    ----------
    name : str
        ``"golden"``, ``"de10nano"`` or a registered backend such as ``"rtl"``.
    params : models.engine.EngineParams
        The accelerator configuration (the functional model and the simulation build from it).
    **kw
        Passed to the backend's constructor.

    Raises
    ------
    UnknownBackendError
        If ``name`` is not a backend (the message lists the known ones).
    BackendError
        If the backend's module cannot be imported (a missing dependency, named in the message).
    DeviceUnavailableError
        If the backend's device cannot be opened (e.g. de10nano off the board).
    """
    target = backends()[check_backend(name)]
    module_name, _, func = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise BackendError(f"the {name} backend cannot be loaded: {e}") from None
        raise BackendError(f"the {name} backend is not available in this build ({module_name} is missing)") from None
    except ImportError as e:
        raise BackendError(f"the {name} backend cannot be loaded: {e}") from None
    return getattr(module, func or "create_transport")(params, **kw)
