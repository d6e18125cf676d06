"""The backends: one :class:`sw.transport.Transport` each, chosen by name.

========== ================================ ==========================================
name       module                           device
========== ================================ ==========================================
golden     :mod:`sw.backends.golden`        functional model of the accelerator (numpy)
de10nano   :mod:`sw.backends.de10nano`      the board: /dev/mem or udmabuf mappings
rtl        ``sim.rtl_backend``              the generated Verilog in cocotb (Verilator)
========== ================================ ==========================================

The host's own backends are listed here; others register through the ``lmflow.backends``
entry-point group (``name = "module:create_transport [extra]"``): the simulation package registers
``rtl`` that way, so the host names no gateware or simulator module and runs without them; in a
host-only install the entry point is there but its module cannot import cocotb, and the error
names the extra to install.
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


def _entry_points():
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def backends():
    """Every backend available here: name -> ``"module"`` or ``"module:function"``."""
    found = dict(BACKENDS)
    for name, ep in _entry_points().items():
        found.setdefault(name, f"{ep.module}:{ep.attr}" if ep.attr else ep.module)
    return found


def _needs(name):
    """`` (it needs the X extra: pip install 'dist[X]')`` for an entry point that names extras."""
    ep = _entry_points().get(name)
    if name in BACKENDS or ep is None or not ep.extras:
        return ""
    dist = ep.dist.name if getattr(ep, "dist", None) is not None else "lmflownet"
    extras = ",".join(ep.extras)
    return f" (it needs the {extras} extra: pip install '{dist}[{extras}]')"


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
        If the backend's module, or a module it imports when it starts, cannot be imported (a
        missing dependency, named in the message with the extra that provides it).
    DeviceUnavailableError
        If the backend's device cannot be opened (e.g. de10nano off the board).
    """
    target = backends()[check_backend(name)]
    module_name, _, func = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise BackendError(f"the {name} backend cannot be loaded: {e}{_needs(name)}") from None
        raise BackendError(f"the {name} backend is not available in this build ({module_name} is missing)") from None
    except ImportError as e:
        raise BackendError(f"the {name} backend cannot be loaded: {e}{_needs(name)}") from None
    try:
        return getattr(module, func or "create_transport")(params, **kw)
    except ModuleNotFoundError as e:        # a dependency the backend imports when it starts
        raise BackendError(f"the {name} backend cannot be loaded: {e}{_needs(name)}") from None
