"""Descriptor fuzzing of the reference model (models.engine), pure numpy: thousands of random
descriptors, valid and invalid, biased to the memory window's edges (sim/descriptor_fuzz.py).

The model's validation is checked against an independent statement of the documented checks
(sim.descriptor_fuzz.spec_error: its own order of checks and region sizes), and every descriptor
list runs on a memory that records every access, so a valid descriptor that touches a byte
outside the window, or outside its own regions, fails here."""

import time

import numpy as np
import pytest

from models.engine import (ADDRESS_SPACE, DESCRIPTOR, ERR_ADDRESS, ERR_ALIGN, ERR_NONE, ERROR_NAMES, Descriptor,
                           EngineParams, execute_program, validate_descriptor, window_end)
from sim.descriptor_fuzz import (CHECK_ORDER, FuzzStats, GuardedMemory, _break, _valid_fields, draw_list, edge_lists, overlap,
                                 fill_image, make_layout, prepare_operands, spec_failures,
                                 spec_regions)

CONFIGS = {
    "p8_s16": EngineParams(pe_count=8, simd_lanes=16, acc_bound=3 * 9 * 128, act_buffer_words=1024,
                           weight_buffer_words=128, popcount_stages=1, max_burst=8),
    "p8_s32": EngineParams(pe_count=8, simd_lanes=32, acc_bound=3 * 9 * 256, act_buffer_words=1024,
                           weight_buffer_words=128, popcount_stages=2, max_burst=16),
    "p32_s64": EngineParams(pe_count=32, simd_lanes=64, acc_bound=3 * 9 * 1024, act_buffer_words=4096,
                            weight_buffer_words=256),
}
PLACEMENTS = {"low": dict(mem_base=0x1000, wrap=False), "top": dict(mem_base=None, wrap=True)}


def _layout(params, placement, mem_size=1 << 16, list_tail=False):
    where = PLACEMENTS[placement]
    base = ADDRESS_SPACE - mem_size if where["wrap"] else where["mem_base"]
    return make_layout(params, base, mem_size, wrap_window=where["wrap"], list_tail=list_tail)


def fuzz_model(params, placement, lists, seed):
    """Run ``lists`` random descriptor lists on the model; returns the statistics."""
    rng = np.random.default_rng(seed)
    stats = FuzzStats()
    bus = params.bus_bytes
    batch = 0
    while stats.lists < lists:
        layout = _layout(params, placement, list_tail=batch % 2 == 1)
        batch += 1
        image = fill_image(rng, layout)
        memory = GuardedMemory(image, layout.mem_base, layout.window)
        edges, cursor = edge_lists(rng, layout, frames=True, desc_addr=layout.lists[0], slot=4 * DESCRIPTOR.nbytes)
        placed = []
        for n in range(40):
            if n < len(edges):
                fl = edges[n]
            else:
                if cursor + 4 * DESCRIPTOR.nbytes > layout.lists[0] + layout.lists[1]:
                    break
                fl = draw_list(rng, layout, frames=True, desc_addr=cursor)
                cursor += 4 * DESCRIPTOR.nbytes
                if any(overlap(fl, other, bus) for other in placed):     # two lists past the window's end
                    continue
            placed.append(fl)
            start = fl.desc_addr // bus * bus
            for i, f in enumerate(fl.fields):
                a = start + i * DESCRIPTOR.nbytes - layout.mem_base
                image[a:a + DESCRIPTOR.nbytes] = np.frombuffer(Descriptor(f, params).to_bytes(), np.uint8)
                if fl.labels[i].startswith("valid"):
                    prepare_operands(image, layout.mem_base, f, params)
            # what the list must do, from the specification alone
            want = (ERR_NONE, fl.count)
            if fl.desc_addr % bus:
                want = (ERR_ALIGN, 0)
            else:
                for i in range(fl.count):
                    a = fl.desc_addr + i * DESCRIPTOR.nbytes
                    if a < layout.window[0] or a + DESCRIPTOR.nbytes > layout.window_end:
                        want = (ERR_ADDRESS, i)
                        break
                    failures = spec_failures(fl.fields[i], params, layout.window)
                    if failures:
                        want = (failures[0], i)
                        break
            memory.accesses.clear()
            got = execute_program(memory, fl.desc_addr, fl.count, params, layout.window)
            assert got == want, (f"{placement} window 0x{layout.window[0]:x}+0x{layout.window[1]:x}, list at "
                                 f"0x{fl.desc_addr:x} {fl.labels}: model {got}, specification {want}; "
                                 f"fields {fl.fields}")
            assert not memory.violations, f"model touched memory outside the window: {memory.violations}"
            # every access lies in the list or in a region of a descriptor that ran
            allowed = [(fl.desc_addr, fl.desc_addr + fl.count * DESCRIPTOR.nbytes, "read")]
            for f in fl.fields[:got[1]]:
                for name, (a, n) in spec_regions(f, params).items():
                    allowed.append((a, a + n, "write" if name == "dst" else "read"))
                    if name == "dst":
                        allowed.append((a, a + n, "read"))       # codes outputs merge lanes
            for kind, lo, hi in memory.accesses:
                assert any(a <= lo and hi <= b and kind == k for a, b, k in allowed), (
                    f"model {kind} 0x{lo:x}..0x{hi:x} outside every region of the list {fl.labels}")
            stats.lists += 1
            for i in range(got[1] + (got[0] != ERR_NONE)):
                label = fl.labels[i] if i < len(fl.labels) else fl.labels[-1]
                stats.add(label, got[0] if i == got[1] else ERR_NONE)
    return stats


@pytest.mark.parametrize("placement", list(PLACEMENTS))
@pytest.mark.parametrize("config", list(CONFIGS))
def test_fuzz_the_model(config, placement):
    """Hundreds of lists (about a thousand descriptors) per configuration and placement, in seconds."""
    params = CONFIGS[config]
    t0 = time.perf_counter()
    stats = fuzz_model(params, placement, lists=500, seed=hash((config, placement)) % 2**32)
    elapsed = time.perf_counter() - t0
    summary = {k: v for k, v in stats.as_dict().items() if k not in ("labels", "cycles")}
    print(f"model fuzz {config} {placement}: {summary} in {elapsed:.1f} s")
    names = set(stats.by_code)
    expected = {ERROR_NAMES[c] for c in CHECK_ORDER} | {"none"}
    assert expected <= names, f"codes never drawn: {expected - names}"
    assert stats.window_hits > 100 and stats.invalid > stats.valid / 2


def test_validation_matches_the_specification():
    """validate_descriptor equals the independent specification on thousands of descriptors, frame
    pairs included, on every configuration; Descriptor.regions equals the documented sizes."""
    n = 0
    for name, params in CONFIGS.items():
        rng = np.random.default_rng(len(name))
        for placement in PLACEMENTS:
            layout = _layout(params, placement)
            for _ in range(700):
                fl = draw_list(rng, layout, frames=True, desc_addr=layout.lists[0])
                for f in fl.fields:
                    desc = Descriptor(f, params)
                    failures = spec_failures(f, params, layout.window)
                    want = failures[0] if failures else ERR_NONE
                    assert validate_descriptor(desc, layout.window) == want, (name, placement, f, failures)
                    if not failures or failures[0] in (ERR_ALIGN, ERR_ADDRESS):
                        assert desc.regions() == spec_regions(f, params), (name, f)
                    n += 1
    assert n > 5000


@pytest.mark.parametrize("config", list(CONFIGS))
def test_the_order_of_the_checks(config):
    """A descriptor that fails two checks gets the code of the one documented first, for every
    pair of checks (and the window check for each operand alone)."""
    params = CONFIGS[config]
    rng = np.random.default_rng(5)
    layout = _layout(params, "low")
    pairs = set()
    for _ in range(3000):
        first, second = sorted(rng.choice(len(CHECK_ORDER), 2, replace=False))
        f, _ = _valid_fields(rng, layout, True)
        order = sorted((CHECK_ORDER[first], CHECK_ORDER[second]),
                       key=lambda c: (c in (ERR_ALIGN, ERR_ADDRESS), CHECK_ORDER.index(c)))
        if any(_break(rng, f, layout, True, code) is None for code in order):
            continue
        failures = spec_failures(f, params, layout.window)
        if failures[:2] != [CHECK_ORDER[first], CHECK_ORDER[second]]:
            continue            # the second break undid the first, or hid it
        assert validate_descriptor(Descriptor(f, params), layout.window) == CHECK_ORDER[first], (f, failures)
        pairs.add((first, second))
    reachable = {(a, b) for a in range(len(CHECK_ORDER)) for b in range(a + 1, len(CHECK_ORDER))}
    missing = {(ERROR_NAMES[CHECK_ORDER[a]], ERROR_NAMES[CHECK_ORDER[b]]) for a, b in reachable - pairs}
    assert len(pairs) >= 20, f"pairs of checks never combined: {sorted(missing)}"


@pytest.mark.parametrize("operand", ["src", "weights", "thresholds", "dst"])
def test_each_operand_alone_outside_the_window(operand):
    """For each operand: starting one bus word below the window, ending one bus word (or one
    byte's worth of a word) past its end, ending exactly at its end; the others inside."""
    params = CONFIGS["p8_s16"]
    rng = np.random.default_rng(9)
    layout = _layout(params, "low")
    bus = params.bus_bytes
    seen = 0
    for _ in range(200):
        f, _ = _valid_fields(rng, layout, False)
        if operand == "thresholds" and f["output_mode"] == 1:
            continue
        key = {"src": "src_addr", "weights": "weights_addr", "thresholds": "thresholds_addr", "dst": "dst_addr"}[operand]
        nbytes = spec_regions(f, params)[operand][1]
        for addr, want in ((layout.window[0] - bus, ERR_ADDRESS), (layout.window_end - nbytes + bus, ERR_ADDRESS),
                           (layout.window_end - nbytes, ERR_NONE), (layout.window[0], ERR_NONE),
                           (ADDRESS_SPACE - bus, ERR_ADDRESS)):
            g = dict(f, **{key: addr})
            # another operand may share the address range: only the window matters here
            assert validate_descriptor(Descriptor(g, params), layout.window) == want, (operand, hex(addr), g)
            seen += 1
    assert seen >= 100


def test_a_window_past_the_top_of_the_address_space_ends_there():
    """WINDOW_BASE + WINDOW_SIZE beyond 2**32: a region that would wrap to address 0 is outside."""
    params = CONFIGS["p8_s16"]
    window = (ADDRESS_SPACE - 0x1000, 0x3000)
    assert window_end(window) == ADDRESS_SPACE
    f = dict(kernel=1, input_op=0, output_mode=1, src_format=0, layer_id=1, src_height=1, src_width=1,
             src_channels=16, out_channels=8, src_addr=ADDRESS_SPACE - 0x1000, weights_addr=ADDRESS_SPACE - 0x800,
             thresholds_addr=0, dst_addr=ADDRESS_SPACE - 0x10)
    nbytes = spec_regions(f, params)["dst"][1]
    assert nbytes == 16
    assert validate_descriptor(Descriptor(f, params), window) == ERR_NONE          # ends exactly at 2**32
    f["dst_addr"] = ADDRESS_SPACE - 8                                            # would wrap by 8 bytes
    assert validate_descriptor(Descriptor(f, params), window) == ERR_ADDRESS
    memory = GuardedMemory(np.zeros(0x1000, np.uint8), ADDRESS_SPACE - 0x1000, window)
    memory.array[:DESCRIPTOR.nbytes] = np.frombuffer(Descriptor(f, params).to_bytes(), np.uint8)
    f["src_addr"] = ADDRESS_SPACE - 0x1000 + DESCRIPTOR.nbytes
    assert execute_program(memory, ADDRESS_SPACE - 0x1000, 1, params, window) == (ERR_ADDRESS, 0)
    assert execute_program(memory, ADDRESS_SPACE - DESCRIPTOR.nbytes // 2, 1, params, window) == (ERR_ADDRESS, 0)
