"""The co-simulation launchers' own logic (fast: no simulator runs)."""

import pytest

from sim import runner
from sim.launch import config_params, simulator_params


def _ids(params):
    return [p.values[0] for p in params]


def test_both_simulators_by_default(monkeypatch):
    monkeypatch.delenv("SIM", raising=False)
    assert runner.selected_simulators() == ["icarus", "verilator"]
    monkeypatch.setenv("SIM", "all")
    assert runner.selected_simulators() == ["icarus", "verilator"]


@pytest.mark.parametrize("sim", ["icarus", "verilator", "Verilator "])
def test_sim_picks_one(monkeypatch, sim):
    monkeypatch.setenv("SIM", sim)
    assert runner.selected_simulators() == [sim.strip().lower()]
    assert _ids(simulator_params()) == [sim.strip().lower()]


def test_sim_wrong(monkeypatch):
    monkeypatch.setenv("SIM", "questa")
    with pytest.raises(ValueError, match=r"^SIM must be one of icarus, verilator or empty, not 'questa'$"):
        runner.selected_simulators()


def test_icarus_skipped_with_reason_only_when_missing(monkeypatch):
    monkeypatch.delenv("SIM", raising=False)
    real_which = runner.shutil.which
    monkeypatch.setattr(runner.shutil, "which",
                        lambda name: None if name == "iverilog" else real_which(name))
    icarus, verilator = simulator_params()
    reason, = [m.kwargs["reason"] for m in icarus.marks]
    assert reason == runner.ICARUS_MISSING and "apt-get install -y iverilog" in reason
    assert not verilator.marks
    monkeypatch.setattr(runner.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert all(not p.marks for p in simulator_params())


def test_configs_and_build_dirs():
    assert _ids(config_params()) == list(runner.TEST_CONFIGS)
    assert runner.build_dir_for("pe", "c", "icarus") == runner.SIM_BUILD / "pe-c-icarus"
    assert runner.build_dir_for("pe", "c", "verilator", "bad", True) == runner.SIM_BUILD / "pe-c-verilator-bad-waves"


def test_other_designs_need_a_tag():
    with pytest.raises(ValueError, match=r"needs a tag"):
        runner.run_component("pe", "test_p4_s8", "icarus", design=object())
