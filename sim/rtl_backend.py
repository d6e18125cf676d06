"""The ``rtl`` backend: the host layer drives the generated Verilog of the accelerator in cocotb.

:class:`RtlTransport` starts a simulation (Verilator by default) of the accelerator of the
hardware configuration on the Avalon memory model (``sim/hdl/``), with the cocotb module
:mod:`sim.tb_rtl_server` serving register and memory accesses over a local socket. The driver,
the runtime and the CLI run unchanged on top of it, so the host layer is verified against the RTL
end to end. The first use builds the simulator (a few minutes for the default P=32 x S=64
array); later runs reuse the build in ``build/sim/``.

Time on this transport is simulated time: the driver's polls and timeouts count clock cycles of
the simulated accelerator (at the configured clock), not wall time.
"""

import importlib.util
from multiprocessing.connection import Listener
import os
import tempfile
import threading
import time

from models.board import ARENA_BASE
from models.hwconfig import check_target, load_hw_config
from sim.accel_runner import MEMORY_BYTES     # bytes of the simulated memory (one memory model for every run)
from sw.errors import TransportError
from sw.transport import Transport

# The simulation stack this backend runs on (the ``sim`` extra); refused at import, so that the
# backend registry names the extra, rather than failing later in a build.
for _module in ("cocotb", "amaranth"):
    if importlib.util.find_spec(_module) is None:
        raise ImportError(f"No module named '{_module}'")

__all__ = ["RtlTransport", "create_transport", "DEFAULT_ARENA_BASE", "MEMORY_BYTES"]

#: Device address of the simulated memory (as the DDR region on the board).
DEFAULT_ARENA_BASE = ARENA_BASE


class RtlTransport(Transport):
    """Register and memory access to the accelerator's RTL in a cocotb simulation.

    Parameters
    ----------
    params : models.engine.EngineParams
        Must match the hardware configuration's engine.
    hw_config : str or models.hwconfig.HardwareConfig, optional
        Hardware configuration (name or YAML path); default the default configuration.
    simulator : str
        ``verilator`` (default) or ``icarus``.
    latency : int
        Read latency of the simulated memory, in cycles.
    start_timeout_s : float
        How long to wait for the simulation to come up (it may have to build first).

    Raises
    ------
    TransportError
        If the simulator is missing, the build fails, or the simulation does not come up.
    """

    name = "rtl"

    def __init__(self, params, *, hw_config=None, simulator="verilator", latency=8, start_timeout_s=1800.0):
        super().__init__()
        from sim.runner import simulator_missing

        reason = simulator_missing(simulator)
        if reason:
            raise TransportError(f"rtl backend: {reason}")
        cfg = check_target(load_hw_config(hw_config), "accelerator")
        if cfg.engine_params != params:
            raise TransportError(f"rtl backend: the hardware configuration's engine {cfg.engine_params} "
                                 f"differs from the expected {params}")
        self._config = cfg
        self._kwargs = cfg.accelerator_kwargs()
        self._dir = tempfile.mkdtemp(prefix="lmflow-rtl-")
        self._address = os.path.join(self._dir, "socket")
        self._listener = Listener(self._address, family="AF_UNIX")
        self._error = None
        self._conn = None
        self._thread = threading.Thread(target=self._simulate, args=(simulator, latency), daemon=True)
        self._thread.start()
        self._conn = self._accept(start_timeout_s)
        status, arena = self._conn.recv()
        self._arena = tuple(arena)

    def _simulate(self, simulator, latency):
        from sim.accel_runner import run_accelerator
        try:
            run_accelerator(self._config, simulator, module="sim.tb_rtl_server", mem_base=DEFAULT_ARENA_BASE,
                            mem_words=None, extra_env={"LMF_RTL_SOCKET": self._address, "LMF_RTL_LATENCY": str(latency)})
        except BaseException as e:      # reported to the host thread
            self._error = e

    def _accept(self, timeout_s):
        # Listener.accept blocks; poll the simulation thread while waiting for it to connect.
        result = {}

        def accept():
            try:
                result["conn"] = self._listener.accept()
            except OSError as e:
                result["error"] = e

        t = threading.Thread(target=accept, daemon=True)
        t.start()
        deadline = time.monotonic() + timeout_s
        while t.is_alive():
            t.join(0.5)
            if not self._thread.is_alive() and t.is_alive():
                self._listener.close()
                raise TransportError(f"rtl backend: the simulation ended before it connected: {self._error}")
            if time.monotonic() > deadline:
                self._listener.close()
                raise TransportError(f"rtl backend: the simulation did not come up within {timeout_s:g} s")
        if "conn" not in result:
            raise TransportError(f"rtl backend: {result.get('error')}")
        return result["conn"]

    def _call(self, op, *args):
        if self._conn is None:
            raise TransportError("rtl backend: no simulation")
        try:
            self._conn.send((op, args))
            status, result = self._conn.recv()
        except (EOFError, OSError) as e:
            raise TransportError(f"rtl backend: the simulation went away ({e}); {self._error or ''}") from None
        if status != "ok":
            raise TransportError(f"rtl backend: {result}")
        return result

    @property
    def arena(self):
        return self._arena

    def _read_reg(self, offset):
        return self._call("read_reg", offset)

    def _write_reg(self, offset, value):
        self._call("write_reg", offset, value)

    def _mem_read(self, addr, nbytes):
        return self._call("mem_read", addr, nbytes)

    def _mem_write(self, addr, data):
        self._call("mem_write", addr, bytes(data))

    def now(self):
        return self._call("now")

    def wait(self, seconds):
        self._call("wait", float(seconds))

    def _close(self):
        if self._conn is not None:
            try:
                self._call("quit")
            except TransportError:
                pass
            self._conn.close()
            self._conn = None
        self._thread.join(timeout=60)
        self._listener.close()
        try:
            os.unlink(self._address)
        except OSError:
            pass
        try:
            os.rmdir(self._dir)
        except OSError:
            pass


def create_transport(params, **kw):
    """The registry's constructor for this backend (see :func:`sw.backends.get_transport`)."""
    return RtlTransport(params, **kw)
