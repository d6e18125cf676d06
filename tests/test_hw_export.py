# amaranth: UnusedElaboratable=no
"""Verilog export (hw/export.py, ``make verilog``)."""

import os

import pytest
from amaranth.hdl import Fragment

from models.errors import ConfigError
from models.hwconfig import load_hw_config
from hw.export import COMPONENTS, build_component, export, main, write_if_changed


def _elaborated(component):
    Fragment.get(component, None)
    return component


def test_build_component_follows_config():
    cfg = load_hw_config("test_p3_s16")
    arr = _elaborated(build_component("pe_array", cfg))
    assert (arr.pe_count, arr.simd_lanes, arr.acc_bound, arr.popcount_stages) == (3, 16, 1296, 1)
    assert _elaborated(build_component("threshold", cfg)).channels == 3
    assert _elaborated(build_component("popcount", cfg)).width == 16
    assert _elaborated(build_component("pe", cfg)).acc_bound == 1296
    with pytest.raises(ValueError, match=r"^component must be one of popcount, pe, pe_array, threshold, accelerator, not 'x'$"):
        build_component("x", cfg)


ARRAY_COMPONENTS = [name for name in COMPONENTS if name != "accelerator"]


def test_export(tmp_path):
    paths = export(load_hw_config("test_p4_s8"), str(tmp_path), ARRAY_COMPONENTS)
    assert list(paths) == ARRAY_COMPONENTS
    for name, path in paths.items():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        assert f"module {name}(" in text
        assert "i_stream__payload" in text and "o_stream__ready" in text
    # Unchanged text is not rewritten, so builds that depend on the file are not redone.
    before = os.stat(paths["pe"]).st_mtime_ns
    export(load_hw_config("test_p4_s8"), str(tmp_path), ["pe"])
    assert os.stat(paths["pe"]).st_mtime_ns == before


def test_write_if_changed(tmp_path):
    path = tmp_path / "a" / "x.v"
    assert write_if_changed(str(path), "one")
    assert not write_if_changed(str(path), "one")
    assert write_if_changed(str(path), "two") and path.read_text() == "two"


def test_main(tmp_path, capsys):
    assert main(["--config", "test_p4_s8", "--out", str(tmp_path), "threshold"]) == 0
    assert (tmp_path / "threshold.v").exists() and not (tmp_path / "pe.v").exists()
    assert "test_p4_s8" in capsys.readouterr().out
    assert main(["--config", str(tmp_path / "none.yaml")]) == 2
    assert "no such hardware configuration" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "bogus"])


def test_export_accelerator(tmp_path):
    # The accelerator needs P to be a multiple of 8 dividing S (test_p8_s32); the array-only
    # test configurations (P = 3, 4) cannot build one and say so.
    path = export(load_hw_config("test_p8_s32"), str(tmp_path), ["accelerator"])["accelerator"]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert "module accelerator(" in text and "csr__address" in text and "wr__byteenable" in text
    with pytest.raises(ConfigError, match="test_p4_s8 cannot be built for the accelerator target: pe_count: pe_count must "
                                          "be a power of two >= 8"):
        build_component("accelerator", load_hw_config("test_p4_s8"))


def test_a_configuration_the_accelerator_cannot_take_writes_nothing(tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["--config", "test_p3_s16", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "cannot be built for the accelerator target" in err
    assert not out.exists()
