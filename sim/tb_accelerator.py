"""cocotb tests of the whole accelerator (registers, engine, memory masters) against models/.

Every test compares the complete memory image after the run with the functional model
(:func:`models.engine.execute_program`) byte for byte, and the status registers with what the
model reports.
"""

import os

import cocotb
import numpy as np

from models.engine import (DESCRIPTOR, ERR_ADDRESS, ERR_ALIGN, ERR_CAPACITY, ERR_FORMAT, ERR_INPUT_OP, ERR_KERNEL,
                           ERR_NONE, ERR_OVERFLOW, ERR_SHAPE, ERROR_NAMES, Descriptor, execute_program)
from models.regmap import CTRL_START

from .accel_cases import build_case, describe_mismatch, random_layer
from .accel_tb import AcceleratorTB, MemorySettings, sim_report as report

CASES = int(os.environ.get("LMF_ACC_CASES", "10"))


def check_status(status, context, **expected):
    """Assert that the status registers hold ``expected`` (field: value); the report names every
    field that differs, with both values, and the whole status."""
    wrong = {k: (status.get(k), v) for k, v in expected.items() if status.get(k) != v}
    assert not wrong, report(f"{context}\n  status registers: " + ", ".join(
        f"{k} is {got}, expected {want}" for k, (got, want) in wrong.items()) + f"; all: {status}")


def save_images(expected, got, descs):
    """Keep both memory images and the descriptors beside the report, for a closer look."""
    path = os.environ.get("LMF_SIM_REPORT")
    if path:
        d = os.path.dirname(path)
        np.save(os.path.join(d, "expected_memory.npy"), expected)
        np.save(os.path.join(d, "got_memory.npy"), got)
        with open(os.path.join(d, "descriptors.txt"), "w", encoding="utf-8") as f:
            for desc in descs:
                f.write(repr(desc.fields) + "\n")


async def run_and_check(tb, rng, layers, memory, label):
    image, desc_addr, descs, expected, (err, idx) = build_case(rng, tb.params, layers, tb.base, tb.size)
    tb.set_memory(memory)
    await tb.load(image)
    status = await tb.run_list(desc_addr, len(descs))
    got = (await tb.dump())[:tb.size]
    ctx = f"{label}: P={tb.params.pe_count} S={tb.params.simd_lanes}, {memory}, layers: " + \
        "; ".join(f"[{i}] {layer.describe()}" for i, layer in enumerate(layers))
    problem = describe_mismatch(expected, got, descs, tb.base, tb.params)
    if problem is not None:
        save_images(expected, got, descs)
    assert problem is None, report(f"{ctx}\n  {problem}")
    assert status["fault"] == 0, report(f"{ctx}\n  memory access outside the memory")
    assert (status["error_code"], status["layers_done"]) == (err, idx), report(
        f"{ctx}\n  status: error {ERROR_NAMES.get(status['error_code'])} after {status['layers_done']} layers, "
        f"expected error {ERROR_NAMES[err]} after {idx}")
    check_status(status, ctx, done=1, busy=0, error=int(err != ERR_NONE), start_ignored=0, window_fault=0)
    return status


@cocotb.test()
async def test_random_layers(dut):
    """Random layers of every kind under random memory latency and wait states."""
    tb = AcceleratorTB(dut)
    await tb.start()
    rng = np.random.default_rng(int(os.environ.get("LMF_ACC_SEED", "1")))
    for case in range(CASES):
        n = int(rng.integers(1, 3))
        layers = [random_layer(rng, tb.params) for _ in range(n)]
        memory = MemorySettings(stall_pct=int(rng.choice([0, 10, 30])), gap_pct=int(rng.choice([0, 20])),
                                latency_min=int(rng.integers(1, 4)), latency_max=int(rng.integers(4, 16)),
                                seed=int(rng.integers(1, 2**31)))
        await run_and_check(tb, rng, layers, memory, f"case {case}")


@cocotb.test()
async def test_every_layer_kind(dut):
    """Directed: each (kernel, input operation, output mode) once, with free memory."""
    tb = AcceleratorTB(dut)
    await tb.start()
    rng = np.random.default_rng(7)
    for kernel in (1, 3):
        for op in (0, 1, 2):
            for raw in (False, True):
                layer = random_layer(rng, tb.params, kernel=kernel, op=op, raw=raw)
                assert (layer.kernel, layer.op, layer.raw) == (kernel, op, raw), report(
                    f"asked for a layer k={kernel} op={op} raw={raw}, got {layer.describe()}")
                await run_and_check(tb, rng, [layer], MemorySettings(latency_min=1, latency_max=1),
                                    f"kind k={kernel} op={op} raw={raw}")


def _mutations(params):
    """(name, field changes, expected error) for the error-path test."""
    return [
        ("kernel 2", {"kernel": 2}, ERR_KERNEL),
        ("input_op 3", {"input_op": 3}, ERR_INPUT_OP),
        ("zero height", {"src_height": 0}, ERR_SHAPE),
        ("space_to_depth of an odd width", {"input_op": 1, "src_width": 3, "src_channels": params.simd_lanes}, ERR_SHAPE),
        ("source larger than the buffer", {"input_op": 0, "src_height": 4095, "src_width": 64}, ERR_CAPACITY),
        ("weights larger than the buffer", {"input_op": 0, "kernel": 3, "src_channels": 4095, "src_height": 1,
                                            "src_width": 1}, ERR_CAPACITY),
        ("accumulator overflow", {"input_op": 0, "kernel": 3, "src_channels": params.acc_bound // 27 + 1,
                                  "src_height": 1, "src_width": 1}, ERR_OVERFLOW),
        ("frame pair without space_to_depth", {"src_format": 1, "input_op": 0, "src_channels": 32}, ERR_FORMAT),
        ("misaligned destination", {"dst_addr": "+1"}, ERR_ALIGN),
        ("weights outside the window", {"weights_addr": 0xFFFF0000}, ERR_ADDRESS),
    ]


@cocotb.test()
async def test_error_paths(dut):
    """A bad second descriptor stops the list with its error; the first layer's output stays."""
    tb = AcceleratorTB(dut)
    await tb.start()
    rng = np.random.default_rng(11)
    for name, change, expected_err in _mutations(tb.params):
        layers = [random_layer(rng, tb.params), random_layer(rng, tb.params, frames=False)]
        image, desc_addr, descs, _, _ = build_case(rng, tb.params, layers, tb.base, tb.size)
        fields = dict(descs[1].fields)
        for key, value in change.items():
            fields[key] = fields[key] + int(value[1:]) if isinstance(value, str) else value
        bad = Descriptor(fields, tb.params)
        off = desc_addr - tb.base + DESCRIPTOR.nbytes
        image[off:off + DESCRIPTOR.nbytes] = np.frombuffer(bad.to_bytes(), np.uint8)
        expected = np.concatenate([np.zeros(tb.base, np.uint8), image.copy()])
        err, idx = execute_program(expected, desc_addr, 2, tb.params, (tb.base, tb.size))
        assert (err, idx) == (expected_err, 1), f"model: {name} gives {ERROR_NAMES[err]} at {idx}"
        await tb.load(image)
        status = await tb.run_list(desc_addr, 2)
        got = (await tb.dump())[:tb.size]
        problem = describe_mismatch(expected[tb.base:], got, descs, tb.base, tb.params)
        if problem is not None:
            save_images(expected[tb.base:], got, descs)
        assert problem is None, report(f"error path {name!r}: {problem}; status {status}")
        assert (status["error_code"], status["error_index"], status["error_layer"], status["layers_done"]) == \
            (expected_err, 1, bad.layer_id, 1), report(
                f"error path '{name}': registers say error {ERROR_NAMES.get(status['error_code'])} at "
                f"{status['error_index']} (layer {status['error_layer']}), {status['layers_done']} done; "
                f"expected {ERROR_NAMES[expected_err]} at 1 (layer {bad.layer_id})")
        check_status(status, f"error path {name!r}", error=1, done=1, busy=0, start_ignored=0)


@cocotb.test()
async def test_start_while_busy(dut):
    """A start while busy is ignored and flagged; the running list completes unharmed."""
    tb = AcceleratorTB(dut)
    await tb.start()
    rng = np.random.default_rng(5)
    layers = [random_layer(rng, tb.params) for _ in range(2)]
    image, desc_addr, descs, expected, (err, idx) = build_case(rng, tb.params, layers, tb.base, tb.size)
    await tb.load(image)
    await tb.write_reg("WINDOW_BASE", tb.base)
    await tb.write_reg("WINDOW_SIZE", tb.size)
    await tb.write_reg("DESC_ADDR", desc_addr)
    await tb.write_reg("DESC_COUNT", len(descs))
    await tb.write_reg("CTRL", 1 << CTRL_START.lsb)
    await tb.write_reg("CTRL", 1 << CTRL_START.lsb)          # while busy
    status = await tb.status()
    check_status(status, "start while busy: just after the second start", busy=1, start_ignored=1)
    await tb.wait_idle()
    status = await tb.status()
    got = (await tb.dump())[:tb.size]
    problem = describe_mismatch(expected, got, descs, tb.base, tb.params)
    assert problem is None, report(f"start while busy: {problem}")
    check_status(status, "start while busy: after the list", busy=0, done=1, error=0, start_ignored=1,
                 layers_done=2, error_code=0)
    await tb.clear()
    status = await tb.status()
    check_status(status, "start while busy: after CTRL.clear", busy=0, done=0, error=0, start_ignored=0)


@cocotb.test()
async def test_cycle_model(dut):
    """With a fixed-latency memory, LAYER_CYCLES and TOTAL_CYCLES equal models.cycles exactly."""
    from models.cycles import list_cycles
    tb = AcceleratorTB(dut)
    await tb.start()
    rng = np.random.default_rng(21)
    for case in range(max(3, CASES // 2)):
        latency = int(rng.integers(1, 12))
        layers = [random_layer(rng, tb.params) for _ in range(int(rng.integers(1, 3)))]
        memory = MemorySettings(latency_min=latency, latency_max=latency, seed=case + 1)
        status = await run_and_check(tb, rng, layers, memory, f"cycle case {case}")
        _, _, descs, _, _ = build_case(np.random.default_rng(0), tb.params, layers, tb.base, tb.size)
        total, each = list_cycles(descs, tb.params, latency=latency)
        assert (status["layer_cycles"], status["total_cycles"]) == (each, total), report(
            f"cycle case {case} (latency {latency}): RTL layer cycles {status['layer_cycles']} total "
            f"{status['total_cycles']}, model {each} total {total}; layers: "
            + "; ".join(layer.describe() for layer in layers))


@cocotb.test()
async def test_descriptor_list_outside_the_window(dut):
    """A descriptor list that is misaligned or outside the window stops before any fetch."""
    tb = AcceleratorTB(dut)
    await tb.start()
    rng = np.random.default_rng(13)
    image, desc_addr, descs, _, _ = build_case(rng, tb.params, [random_layer(rng, tb.params)], tb.base, tb.size)
    await tb.load(image)
    for addr, window, err in ((desc_addr + 1, None, ERR_ALIGN),
                              (desc_addr, (desc_addr + 64, tb.size - (desc_addr - tb.base) - 64), ERR_ADDRESS)):
        expected = np.concatenate([np.zeros(tb.base, np.uint8), image.copy()])
        model = execute_program(expected, addr, 1, tb.params, window or (tb.base, tb.size))
        status = await tb.run_list(addr, 1, window=window)
        assert model == (err, 0), f"model: {model}"
        assert (status["error_code"], status["error_index"], status["layers_done"]) == (err, 0, 0), report(
            f"descriptor list at 0x{addr:x}: registers say {ERROR_NAMES.get(status['error_code'])} at "
            f"{status['error_index']}, expected {ERROR_NAMES[err]}")
        got = (await tb.dump())[:tb.size]
        assert np.array_equal(got, image), report("a list stopped before its fetch changed memory")


@cocotb.test()
async def test_a_long_list(dut):
    """300 tiny descriptors and a bad one: ERROR.index reads 300 (16 bits, as DESC_COUNT), and
    LAYER_CYCLES0..15 keep the first 16 descriptors (descriptors 256..271 do not overwrite them)."""
    from models.cycles import descriptor_cycles
    tb = AcceleratorTB(dut)
    await tb.start()
    rng = np.random.default_rng(17)
    layer = random_layer(rng, tb.params, max_hw=1, kernel=1, op=0, raw=True)
    image, desc_addr, descs, _, _ = build_case(rng, tb.params, [layer], tb.base, tb.size)
    n = 300
    bad = Descriptor(dict(descs[0].fields, kernel=2, layer_id=77), tb.params)
    table = np.frombuffer(descs[0].to_bytes() * n + bad.to_bytes(), np.uint8)
    start = tb.size - table.size
    image[start:] = table
    expected = np.concatenate([np.zeros(tb.base, np.uint8), image.copy()])
    model = execute_program(expected, tb.base + start, n + 1, tb.params, (tb.base, tb.size))
    assert model == (ERR_KERNEL, n), report(f"long list: the model says {model}")
    tb.set_memory(MemorySettings(latency_min=2, latency_max=2))
    await tb.load(image)
    status = await tb.run_list(tb.base + start, n + 1)
    check_status(status, "a list of 301 descriptors", error_code=ERR_KERNEL, error_index=n, error_layer=77,
                 layers_done=n, done=1, busy=0, error=1)
    one = descriptor_cycles(descs[0], tb.params, latency=2)
    assert status["layer_cycles"] == [one] * 16, report(
        f"a list of 301 descriptors: LAYER_CYCLES0..15 {status['layer_cycles']}, each should be {one}")
    got = (await tb.dump())[:tb.size]
    problem = describe_mismatch(expected[tb.base:], got, descs, tb.base, tb.params)
    assert problem is None, report(f"a list of 301 descriptors: {problem}")
