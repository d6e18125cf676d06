"""Stream testbenches in Amaranth's own simulator: the fast tier of the gateware tests.

:func:`run_stream` pushes :class:`~sim.reference.Transaction` beats into a component's
``i_stream`` (with random idle cycles) and collects ``o_stream`` (with random back-pressure),
using the same payload packing (:mod:`sim.payload`) and expected values (:mod:`sim.reference`)
as the cocotb testbenches. :func:`measure_latency` checks a component's ``latency`` property.
"""

import random

from amaranth.hdl import Module, Signal, Value
from amaranth.sim import Simulator

from .payload import pack, unpack
from .reference import leaves

__all__ = ["run_stream", "check_outputs", "measure_latency"]


def _clocked(dut):
    """``dut`` inside a module that surely has a ``sync`` domain (a zero-stage popcount has
    none), so the testbench can count clock ticks."""
    m = Module()
    m.submodules.dut = dut
    heartbeat = Signal()
    m.d.sync += heartbeat.eq(~heartbeat)
    return m


def run_stream(dut, transactions, *, idle=0.0, stall=0.0, seed=0, max_cycles=None, vcd=None):
    """Simulate ``dut`` on ``transactions``; returns the received outputs (unpacked) and cycles.

    Parameters
    ----------
    dut : amaranth.lib.wiring.Component
        A component with ``i_stream`` and ``o_stream`` (with or without a clock domain).
    transactions : list of Transaction
    idle, stall : float
        Per-cycle probability of an idle input cycle / a stalled output cycle.
    seed : int
    max_cycles : int, optional
        Stop after this many cycles (default: generous for the traffic).
    vcd : str, optional
        Write a waveform to this path.
    """
    rng = random.Random(seed)
    in_shape = dut.i_stream.payload.shape()
    out_shape = dut.o_stream.payload.shape()
    beats = [pack(in_shape, beat) for t in transactions for beat in t.beats]
    expected = len(transactions)
    if max_cycles is None:
        max_cycles = int(len(beats) / (1 - idle) / (1 - stall) * 2 + 8 * expected + 100)
    outputs = []
    state = {"cycles": 0}

    in_payload = Value.cast(dut.i_stream.payload)

    async def producer(ctx):
        for raw in beats:
            while idle and rng.random() < idle:
                await ctx.tick()
            ctx.set(in_payload, raw)
            ctx.set(dut.i_stream.valid, 1)
            await ctx.tick().until(dut.i_stream.ready)
            ctx.set(dut.i_stream.valid, 0)

    async def consumer(ctx):
        out_payload = Value.cast(dut.o_stream.payload)
        while len(outputs) < expected and state["cycles"] < max_cycles:
            ready = not stall or rng.random() >= stall
            ctx.set(dut.o_stream.ready, ready)
            _, _, valid, raw = await ctx.tick().sample(dut.o_stream.valid, out_payload)
            state["cycles"] += 1
            if ready and valid:
                outputs.append(unpack(out_shape, raw))

    sim = Simulator(_clocked(dut))
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return outputs, state["cycles"]


def check_outputs(transactions, outputs, context=""):
    """Assert that ``outputs`` match the transactions' expected values, in order.

    The message of the first mismatch names the context, the output, the channel, the inputs,
    the expected and the received value.
    """
    assert len(outputs) == len(transactions), (
        f"{context}: received {len(outputs)} of {len(transactions)} outputs")
    for index, (t, got) in enumerate(zip(transactions, outputs)):
        received = dict(leaves(got))
        for path, want in leaves(t.expected):
            if received.get(path) != want:
                channel = next((p for p in path if isinstance(p, int)), None)
                raise AssertionError(
                    f"MISMATCH in {context}: output #{index}, channel {channel}, field {path}: "
                    f"inputs {t.inputs(channel)}; expected {want}, received {received.get(path)}")


def measure_latency(dut, transaction, max_cycles=100):
    """Cycles from the acceptance of a transaction's last beat to its output, without stalls.

    0 means the output is offered in the cycle the last beat is accepted (combinational).
    """
    in_payload = Value.cast(dut.i_stream.payload)
    beats = [pack(dut.i_stream.payload.shape(), beat) for beat in transaction.beats]
    result = {}

    async def testbench(ctx):
        ctx.set(dut.o_stream.ready, 1)
        pending = list(beats)
        ctx.set(in_payload, pending[0])
        ctx.set(dut.i_stream.valid, 1)
        accepted_at = None
        for cycle in range(max_cycles):
            _, _, i_valid, i_ready, o_valid = await ctx.tick().sample(
                dut.i_stream.valid, dut.i_stream.ready, dut.o_stream.valid)
            if i_valid and i_ready:
                pending.pop(0)
                if pending:
                    ctx.set(in_payload, pending[0])
                else:
                    accepted_at = cycle
                    ctx.set(dut.i_stream.valid, 0)
            if accepted_at is not None and o_valid:
                result["latency"] = cycle - accepted_at
                return

    sim = Simulator(_clocked(dut))
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    if "latency" not in result:
        raise AssertionError(f"no output within {max_cycles} cycles")
    return result["latency"]
