"""cocotb module behind the host layer's ``rtl`` backend (:mod:`sim.rtl_backend`).

It serves register and device-memory accesses of a host-side :class:`~sw.transport.Transport`
over a local socket (``LMF_RTL_SOCKET``), on the accelerator and memory model of
``tb_accelerator``. Device memory is mirrored here: host writes go to the mirror, which is loaded
into the simulated memory when a start is written; after a run the simulated memory is dumped
back before the host reads or writes it. Simulated time only passes while the host waits or
accesses registers, so the host's polling and timeouts run on simulated time.
"""

from multiprocessing.connection import Client
import os
import traceback

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles
from cocotb.utils import get_sim_time

from models.regmap import CTRL_START, REG

from .accel_tb import CLOCK_NS, AcceleratorTB, MemorySettings


@cocotb.test()
async def serve(dut):
    tb = AcceleratorTB(dut)
    latency = int(os.environ.get("LMF_RTL_LATENCY", "8"))
    await tb.start(MemorySettings(latency_min=latency, latency_max=latency))
    conn = Client(os.environ["LMF_RTL_SOCKET"], family="AF_UNIX")
    mirror = np.zeros(tb.size, dtype=np.uint8)
    host_dirty = True        # the mirror holds data the simulated memory lacks
    sim_dirty = False        # the simulated memory may hold data the mirror lacks
    conn.send(("ready", (tb.base, tb.size)))
    while True:
        op, args = conn.recv()
        try:
            if op == "quit":
                conn.send(("ok", None))
                break
            if op in ("mem_read", "mem_write") and sim_dirty:
                mirror = (await tb.dump())[:tb.size].copy()
                sim_dirty = False
            if op == "read_reg":
                result = await tb.read_offset(args[0])
            elif op == "write_reg":
                offset, value = args
                if offset == REG["CTRL"].offset and value & (1 << CTRL_START.lsb):
                    if host_dirty:
                        await tb.load(mirror)
                        host_dirty = False
                    sim_dirty = True
                await tb.write_offset(offset, value)
                result = None
            elif op == "mem_read":
                addr, n = args
                result = mirror[addr - tb.base:addr - tb.base + n].tobytes()
            elif op == "mem_write":
                addr, data = args
                mirror[addr - tb.base:addr - tb.base + len(data)] = np.frombuffer(data, dtype=np.uint8)
                host_dirty = True
                result = None
            elif op == "now":
                result = get_sim_time("ns") * 1e-9
            elif op == "wait":
                await ClockCycles(dut.clk, max(1, int(args[0] * 1e9 / CLOCK_NS)))
                result = None
            else:
                raise ValueError(f"unknown request {op!r}")
            conn.send(("ok", result))
        except Exception as e:      # report to the host, keep serving
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"))
    conn.close()
