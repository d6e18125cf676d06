"""Register-to-register paths of a synthesized netlist, in LUT levels, with their end points named.

:func:`timing_paths` walks a Yosys ``write_json`` netlist (after ``synth_intel_alm``) the way
:func:`hw.synth.logic_depth` counts levels (every LUT 1, a carry chain entered through its data
inputs 1, carry propagation 0) and keeps, for every path end (a register's or a block RAM's
input, an output port), its depth and the path's start (a register's or block RAM's output, an
input port), named by the signals of the design that the bits still carry.
:func:`worst_by_component` groups the ends by the component they lie in (the hierarchy of a
flattened design: ``engine.sequencer.widx`` is in ``engine.sequencer``) and keeps the worst path
of each: what ``make synth`` prints per component.
"""

from dataclasses import dataclass

__all__ = ["TimingPath", "timing_paths", "worst_by_component", "format_paths"]

_LUTS = ("MISTRAL_ALUT6", "MISTRAL_ALUT5", "MISTRAL_ALUT4", "MISTRAL_ALUT3", "MISTRAL_ALUT2", "MISTRAL_NOT")
_ARITH = "MISTRAL_ALUT_ARITH"
_SEQUENTIAL = ("MISTRAL_FF", "MISTRAL_M10K", "MISTRAL_MLAB")


@dataclass(frozen=True)
class TimingPath:
    """One path: its LUT levels, where it starts and where it ends (signal name and bit)."""

    levels: int
    start: str
    end: str

    @property
    def start_component(self):
        return component_of(self.start)

    @property
    def end_component(self):
        return component_of(self.end)


def component_of(name, depth=2):
    """The component a flattened signal name lies in: its first ``depth`` hierarchy levels
    (``engine.sequencer.widx[3]`` -> ``engine.sequencer``; a top-level signal -> ``(top)``)."""
    parts = name.split("[", 1)[0].split(".")
    return ".".join(parts[:min(depth, len(parts) - 1)]) or "(top)"


def _bit_names(module):
    """Bit -> ``"signal[i]"``, preferring names of the design over generated ones."""
    names = {}
    for net, info in module["netnames"].items():
        clean = not net.startswith("$") and "MISTRAL" not in net and "$" not in net
        score = (0 if clean else 1, 0 if not info.get("hide_name") else 1, net.count("_"), len(net))
        for i, bit in enumerate(info["bits"]):
            if not isinstance(bit, int):
                continue
            label = net.lstrip("\\") + (f"[{i}]" if len(info["bits"]) > 1 else "")
            if bit not in names or score < names[bit][0]:
                names[bit] = (score, label)
    return {bit: label for bit, (score, label) in names.items()}


def timing_paths(netlist, top):
    """Every path end of ``top`` with its depth and start.

    Returns
    -------
    list of TimingPath
        One per end bit that combinational logic drives (ends driven straight by a register are
        left out: 0 levels).
    """
    module = netlist["modules"][top]
    cells = module["cells"]
    names = _bit_names(module)
    driver = {}
    for cname, cell in cells.items():
        if cell["type"].startswith(_SEQUENTIAL):
            continue
        for port, direction in cell["port_directions"].items():
            if direction == "output":
                for bit in cell["connections"].get(port, []):
                    if isinstance(bit, int):
                        driver[bit] = (cname, port)

    best = {}           # (cell, port) -> (levels, start bit)

    def inputs(cell, ports):
        for port in ports:
            for bit in cell["connections"].get(port, []):
                if isinstance(bit, int):
                    yield bit

    def source(bit):
        """(levels, start bit) of a bit: a driven bit inherits its driver's, others start here."""
        key = driver.get(bit)
        return best[key] if key is not None else (0, bit)

    def evaluate(root):
        stack = [root]
        while stack:
            key = stack[-1]
            if key in best:
                stack.pop()
                continue
            cell = cells[key[0]]
            in_ports = [p for p, d in cell["port_directions"].items() if d == "input"]
            data_ports = [p for p in in_ports if p != "CI"] if cell["type"] == _ARITH else in_ports
            carry_ports = ["CI"] if cell["type"] == _ARITH else []
            deps = [driver[b] for b in inputs(cell, in_ports) if b in driver]
            missing = [d for d in deps if d not in best]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            counts = cell["type"] in _LUTS or cell["type"] == _ARITH
            found = (1 if counts else 0, None)
            for bit in inputs(cell, data_ports):
                levels, start = source(bit)
                if levels + (1 if counts else 0) > found[0] or found[1] is None:
                    found = (max(levels + (1 if counts else 0), found[0]), start)
            for bit in inputs(cell, carry_ports):
                levels, start = source(bit)
                if levels > found[0]:
                    found = (levels, start)
            best[key] = found

    for key in set(driver.values()):
        evaluate(key)

    ends = []
    for cname, cell in cells.items():
        if not cell["type"].startswith(_SEQUENTIAL):
            continue
        for port, direction in cell["port_directions"].items():
            if direction != "input":
                continue
            for bit in cell["connections"].get(port, []):
                if isinstance(bit, int) and bit in driver:
                    ends.append((bit, cname, port))
    for pname, port in module["ports"].items():
        if port["direction"] == "output":
            for bit in port["bits"]:
                if isinstance(bit, int) and bit in driver:
                    ends.append((bit, pname, "port"))
    paths = []
    for bit, cname, port in ends:
        levels, start = best[driver[bit]]
        if start is None:
            start_name = "(constant)"
        else:
            start_name = names.get(start, f"bit {start}")
        cell = cells.get(cname)
        end_name = names.get(bit, f"bit {bit}")
        if cell is not None and cell["type"] == "MISTRAL_FF":
            qbits = [b for b in cell["connections"].get("Q", []) if isinstance(b, int)]
            if qbits and qbits[0] in names:
                end_name = names[qbits[0]]          # the register it enters, not its D net
        paths.append(TimingPath(levels, start_name, end_name))
    return paths


def worst_by_component(paths, depth=2):
    """The deepest path ending in each component: ``{component: TimingPath}``, deepest first."""
    worst = {}
    for path in paths:
        comp = component_of(path.end, depth)
        if comp not in worst or path.levels > worst[comp].levels:
            worst[comp] = path
    return dict(sorted(worst.items(), key=lambda kv: (-kv[1].levels, kv[0])))


def format_paths(worst):
    """Lines ``component: N levels, start -> end``."""
    width = max((len(c) for c in worst), default=0)
    return "\n".join(f"  {comp:<{width}}  {p.levels:2d} levels  {p.start} -> {p.end}" for comp, p in worst.items())
