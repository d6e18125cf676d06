"""cocotb testbench infrastructure: clock and reset, stream drivers and monitors, scoreboard.

A testbench module (``sim/tb_<component>.py``) builds a :class:`ComponentTB` on the DUT, which
rebuilds the same Amaranth component from the environment the launcher sets (``LMF_SIM_CONFIG``:
the hardware configuration YAML, ``LMF_SIM_COMPONENT``: the component name, see
:mod:`sim.runner`) to learn its payload layouts and latency. The testbench then queues
:class:`~sim.reference.Transaction` objects: their beats go to the input stream, their expected
outputs to the :class:`Scoreboard`, which checks every output beat in order and reports the
first mismatch with the configuration, the channel, the inputs, the expected and the received
value.

Timing: both streams are handled by one coroutine woken on each rising edge. At the edge it
reads ``valid``/``ready`` as the DUT's registers sampled them (a handshake happened iff both
were high), then drives the next cycle's values; writes land after the edge (inertial writes),
so the DUT sees them at the next one. Traffic patterns cross idle cycles on the input
(``valid`` low with data pending) with back-pressure on the output (``ready`` low), each drawn
at random per cycle.
"""

from collections import deque
import os
import random
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import Event, First, RisingEdge, Timer

from models.hwconfig import load_hw_config
from hw.export import build_component

from .payload import pack, unpack
from .reference import leaves

__all__ = ["TRAFFIC", "ComponentTB", "Scoreboard", "StreamSource", "StreamSink"]

#: Traffic patterns: name -> (probability of an idle input cycle, probability of a stalled output
#: cycle). Every data-path test runs under each of them.
TRAFFIC = {
    "free": (0.0, 0.0),
    "idle": (0.4, 0.0),
    "stall": (0.0, 0.5),
    "both": (0.3, 0.4),
}

CLOCK_NS = 10


class StreamSource:
    """Drives an Amaranth stream (``<name>__valid``, ``__payload``, reads ``__ready``)."""

    def __init__(self, dut, name, shape, rng, idle):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.shape = shape
        self.rng = rng
        self.idle = idle
        self.queue = deque()
        self.sent = 0
        self._offering = False

    def put(self, payload):
        self.queue.append(pack(self.shape, payload))

    def start(self):
        self.valid.value = 0

    def step(self):
        """Called at each rising edge: retire an accepted beat, offer the next one."""
        if self._offering and self.ready.value:
            self.queue.popleft()
            self.sent += 1
            self._offering = False
        if not self._offering and self.queue:
            if self.idle == 0.0 or self.rng.random() >= self.idle:
                self.payload.value = self.queue[0]
                self.valid.value = 1
                self._offering = True
                return
        if not self._offering:
            self.valid.value = 0


class StreamSink:
    """Receives an Amaranth stream, with random back-pressure; calls ``callback(value)``."""

    def __init__(self, dut, name, shape, rng, stall, callback):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.shape = shape
        self.rng = rng
        self.stall = stall
        self.callback = callback
        self._ready = False

    def start(self):
        self.ready.value = 0

    def step(self):
        if self._ready and self.valid.value:
            self.callback(unpack(self.shape, self.payload.value.to_unsigned()))
        ready = self.stall == 0.0 or self.rng.random() >= self.stall
        if ready != self._ready:
            self.ready.value = int(ready)
            self._ready = ready


class Scoreboard:
    """In-order checker: compares each received output with the next expected one.

    Every mismatching output channel is counted; the first one is reported in full (``report``)
    and logged as a line starting with ``MISMATCH``.
    """

    def __init__(self, log, context):
        self.log = log
        self.context = context
        self.pending = deque()
        self.received = 0
        self.mismatches = 0
        self.report = None
        self.done = Event()
        self.unexpected = 0

    def expect(self, transaction):
        self.pending.append((self.received + len(self.pending), transaction))
        self.done.clear()

    def receive(self, value):
        if not self.pending:
            self.unexpected += 1
            if self.report is None:
                self.report = f"MISMATCH in {self.context}: unexpected output {value!r}"
                self.log.error(self.report)
            return
        index, transaction = self.pending.popleft()
        self.received += 1
        got = dict(leaves(value))
        for path, want in leaves(transaction.expected):
            if got.get(path) != want:
                self.mismatches += 1
                if self.report is None:
                    self.report = self._report(index, transaction, path, want, got.get(path))
                    self.log.error(self.report)
        if not self.pending:
            self.done.set()

    def _report(self, index, transaction, path, want, got):
        channel = next((p for p in path if isinstance(p, int)), None)
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        where = f"channel {channel}" if channel is not None else "the output"
        if any(isinstance(p, str) for p in path):
            where += f", field {field}"
        return (f"MISMATCH in {self.context}\n"
                f"  output #{index}, {where}\n"
                f"  inputs: {transaction.inputs(channel)}\n"
                f"  expected {want}, received {got}")

    def check(self):
        """Fail (``AssertionError``) if anything mismatched or is still pending.

        The report is also appended to the file ``$LMF_SIM_REPORT`` names, if any, for the
        launcher to show.
        """
        message = None
        if self.report is not None:
            message = (f"{self.report}\n  ({self.mismatches} mismatching values, "
                       f"{self.unexpected} unexpected outputs)")
        elif self.pending:
            index, transaction = self.pending[0]
            message = (f"MISMATCH in {self.context}: timeout, received {self.received} of "
                       f"{self.received + len(self.pending)} outputs; first missing output "
                       f"#{index}: inputs {transaction.inputs(None)}, expected "
                       f"{transaction.expected!r}")
            self.log.error(message)
        if message is None:
            return
        path = os.environ.get("LMF_SIM_REPORT")
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(message + "\n")
        raise AssertionError(message)


class ComponentTB:
    """Testbench of one exported component: clock, reset, drivers, monitor and scoreboard.

    Parameters
    ----------
    dut : cocotb handle
    traffic : str
        A key of :data:`TRAFFIC`.
    seed_salt : str
        Mixed into ``cocotb.RANDOM_SEED`` so each test draws its own stimulus.
    """

    def __init__(self, dut, traffic="free", seed_salt=""):
        self.dut = dut
        self.cfg = load_hw_config(os.environ["LMF_SIM_CONFIG"])
        self.component_name = os.environ["LMF_SIM_COMPONENT"]
        self.component = build_component(self.component_name, self.cfg)
        self.traffic = traffic
        idle, stall = TRAFFIC[traffic]
        self.seed = (cocotb.RANDOM_SEED + sum(map(ord, seed_salt + traffic)) * 7919) % (1 << 32)
        self.rng = np.random.default_rng(self.seed)
        self.pyrng = random.Random(self.seed)
        context = (f"{self.component_name} on {cocotb.SIM_NAME} ({self.cfg.summary()}; "
                   f"traffic {traffic}; seed {self.seed})")
        self.scoreboard = Scoreboard(dut._log, context)
        self.source = StreamSource(dut, "i_stream", self.component.i_stream.payload.shape(),
                                   self.pyrng, idle)
        self.sink = StreamSink(dut, "o_stream", self.component.o_stream.payload.shape(),
                               self.pyrng, stall, self.scoreboard.receive)
        self.cycles = 0
        self._clock = None

    async def reset(self, cycles=2):
        """Start the clock, hold ``rst`` for a few cycles, start the stream handlers.

        A purely combinational DUT (a zero-stage popcount) has neither ``clk`` nor ``rst``:
        the stream handlers then step on a timer of the same period.
        """
        self.source.start()
        self.sink.start()
        if self.has_clock:
            self.dut.rst.value = 1
            self._clock = Clock(self.dut.clk, CLOCK_NS, unit="ns")
            self._clock.start()
        for _ in range(cycles):
            await self._edge()
        if self.has_clock:
            self.dut.rst.value = 0
        await self._edge()
        cocotb.start_soon(self._edges())

    @property
    def has_clock(self):
        return hasattr(self.dut, "clk")

    def _edge(self):
        return RisingEdge(self.dut.clk) if self.has_clock else Timer(CLOCK_NS, unit="ns")

    async def _edges(self):
        source, sink = self.source, self.sink
        clocked = self.has_clock
        clk = self.dut.clk if clocked else None
        while True:
            await (RisingEdge(clk) if clocked else Timer(CLOCK_NS, unit="ns"))
            self.cycles += 1
            sink.step()
            source.step()

    async def run(self, transactions, max_cycles=None):
        """Stream ``transactions`` through the DUT and check every output; fails on a mismatch.

        Returns
        -------
        dict
            ``beats``, ``cycles`` and wall-clock ``seconds`` of the run.
        """
        beats = 0
        for t in transactions:
            for beat in t.beats:
                self.source.put(beat)
                beats += 1
            self.scoreboard.expect(t)
        if max_cycles is None:
            idle, stall = TRAFFIC[self.traffic]
            max_cycles = int(beats / (1 - idle) / (1 - stall) * 2 + len(transactions) * 4 + 200)
        start_cycles, start = self.cycles, time.perf_counter()
        if self.scoreboard.pending:
            await First(self.scoreboard.done.wait(), Timer(max_cycles * CLOCK_NS, unit="ns"))
        seconds = time.perf_counter() - start
        cycles = self.cycles - start_cycles
        # A few more cycles to catch extra outputs.
        for _ in range(4):
            await self._edge()
        self.scoreboard.check()
        assert self.source.sent == beats, f"{beats - self.source.sent} input beats not accepted"
        self.dut._log.info("%d transactions, %d beats, %d cycles, %.2f s (%.0f cycles/s)",
                           len(transactions), beats, cycles, seconds, cycles / max(seconds, 1e-9))
        return {"beats": beats, "cycles": cycles, "seconds": seconds}
