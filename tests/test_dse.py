"""Design-space sweep (dse/): sweep files, the M10K rule, the resource model's composition, the
sweep's outputs and resumption (fast: no synthesis; the component reports are stand-ins)."""

import csv
import json

import pytest

from dse import resources, run as dse_run
from dse.run import best_per_budget, pareto_front, parse_budget
from dse.sweep import load_sweep
from models.errors import ConfigError
from models.hwconfig import load_hw_config


def test_m10k_rule():
    # 4096 x 128 in one lane: 2048 x 5 or 1024 x 10 shapes, 52 blocks; 512 x 128: 512 x 20, 7.
    assert resources.m10k_blocks(4096, 128) == 52
    assert resources.m10k_blocks(512, 128) == 7
    assert resources.m10k_blocks(64, 128, lanes=2) == 2 * 4
    assert resources.m10k_blocks(8192, 1) == 1


def test_yosys_own_m10k_rule_for_small_memories():
    # the writer's 31 x 145 FIFO: 4 blocks of 256 x 40, 11 % full (>= 5 %): M10K
    assert resources.yosys_m10k_blocks(31, 145) == 4
    # 16 x 8: one 256 x 40 block 1.25 % full: left to MLAB or flip-flops
    assert resources.yosys_m10k_blocks(16, 8) == 0
    assert resources.yosys_m10k_blocks(256, 40) == 1


def test_block_ram_of_the_default_accelerator_counts_its_memories():
    """The M10K blocks of the default 64 x 64 accelerator's memories (act buffer 8192 x 128: 104
    blocks, 32 weight memories of 512 x 128: 7 each, the writer's 31 x 145 FIFO: 4); its whole
    synthesis and `make bitstream` (the board top) report 332."""
    assert resources.block_ram(load_hw_config()) == 332


def test_default_sweep_loads():
    sweep = load_sweep()
    assert len(sweep.points) >= 30
    assert all(p.pe_count <= p.simd_lanes for p in sweep.points)
    assert sweep.refused and all("pe_count" in why for _, why in sweep.refused)
    assert sweep.train and sweep.held_out
    assert sweep.timing_ok(100, 12) and not sweep.timing_ok(100, 13) and not sweep.timing_ok(125, 10)


@pytest.mark.parametrize("text,error", [
    ("grid: {pe_count: 8}\n", r"grid.pe_count: must be a non-empty list of values, not 8"),
    ("grid: {lanes: [8]}\n", r"grid.lanes: unknown parameter"),
    ("colour: red\n", r"colour: unknown key"),
    ("base: nosuch\n", r"no such hardware configuration"),
    ("base: test_p4_s8\n", r"cannot be built for the accelerator target"),
    ("calibration: {train: [{pe_count: 4}]}\n", r"calibration.train\[0\]: pe_count"),
])
def test_sweep_errors(tmp_path, text, error):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=error):
        load_sweep(str(path))


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("20m", 1200), ("1.5h", 5400), ("", None)])
def test_parse_budget(text, seconds):
    assert parse_budget(text) == seconds


def test_parse_budget_wrong():
    with pytest.raises(ValueError, match=r"^DSE_BUDGET must be a positive time such as 90s, 20m or 1h, not 'soon'$"):
        parse_budget("soon")


def _record(name, alms, ms, fits=True, timing=True, board="ok"):
    return {"name": name, "alm_estimate": alms, "fits_device": fits, "timing_ok": timing, "board_target": board,
            "networks": {"n": {"frame_ms": ms}}}


def test_pareto_and_best_per_budget():
    rs = [_record("a", 10, 5.0), _record("b", 20, 3.0), _record("c", 25, 4.0), _record("d", 30, 1.0, fits=False),
          _record("e", 15, 2.0, timing=False), _record("f", 18, 2.5, board="simd_lanes: ...")]
    assert [r["name"] for r in pareto_front(rs, "n")] == ["a", "f"]
    best = best_per_budget(rs, [12, 22, 40], "n")
    assert {b: (r["name"] if r else None) for b, r in best.items()} == {12: "a", 22: "b", 40: "b"}
    assert best_per_budget(rs, [5], "n") == {5: None}


def _fake_report(component, cfg):
    p = cfg.pe_count
    per = {"pe_array": 10 * cfg.simd_lanes, "threshold": 7}[component]
    lut = {k: 0 for k in resources.LUT_CLASSES}
    lut["6"] = per * p + 3
    return {"luts_by_inputs": lut, "luts": lut["6"], "ffs": 2 * p, "m10k": 0, "logic_levels": 4}


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    model = {"rest": {q: [100.0] + [0.0] * len(resources.REST_FEATURES) for q in resources.QUANTITIES}, "rest_levels": 9,
             "source_hash": "x", "held_out_error_pct": {"alm_estimate": {"mean_abs": 1.0, "max_abs": 2.0}}}
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model))
    monkeypatch.setattr(resources, "MODEL_PATH", str(path))
    monkeypatch.setattr(resources, "synth_cached", _fake_report)
    monkeypatch.setattr(resources, "block_ram", lambda cfg: 11)
    return path


def test_model_composes_components_linearly(fake_model):
    model = resources.ResourceModel.load()
    cfg = load_hw_config("p32_s64")
    pred = model.predict(cfg)
    # PE array 10*S per PE + 3, threshold 7 per channel + 3, both linear in P; rest 100.
    assert pred["luts_by_inputs"]["6"] == 10 * 64 * 32 + 3 + 7 * 32 + 3 + 100
    assert pred["ffs"] == 2 * 32 + 2 * 32 + 100 and pred["m10k"] == 11 and pred["logic_levels"] == 9


def test_sweep_writes_outputs_and_resumes(tmp_path, fake_model, capsys):
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("networks: [lmflownet_d3_96x128]\ngrid: {pe_count: [8, 16], popcount_stages: [1]}\n"
                          "budgets_alms: [1000000]\n")
    sweep = load_sweep(str(sweep_file))
    out = tmp_path / "out"
    records, complete = dse_run.run_sweep(sweep, out=str(out), jobs=1, progress=False)
    assert complete and len(records) == 3                      # two grid points and the base design
    assert sum(r["default"] for r in records) == 1
    best = dse_run.write_outputs(records, sweep, str(out))
    assert best[1000000]["pe_count"] == 64                       # the base has the most PEs: fastest
    with (out / "points.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and int(rows[0]["lmflownet_d3_96x128:cycles"]) > 0
    data = json.loads((out / "points.json").read_text())
    assert data["resource_model"]["held_out_error_pct"]["alm_estimate"]["max_abs"] == 2.0
    assert (out / "pareto.png").stat().st_size > 10000
    capsys.readouterr()
    records, complete = dse_run.run_sweep(sweep, out=str(out), jobs=1, progress=False)
    assert "3 done before, 0 to evaluate" in capsys.readouterr().out


def test_sweep_budget_stops_early(tmp_path, fake_model):
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("networks: [lmflownet_d3_96x128]\ngrid: {pe_count: [8, 16]}\n")
    records, complete = dse_run.run_sweep(load_sweep(str(sweep_file)), out=str(tmp_path / "o"), jobs=1,
                                          budget_s=1e-9, progress=False)
    assert not complete and records == []
