"""Benchmark entry points: a bad configuration gives one line naming the file, exit status 2."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["models.bench", "sw.bench", "hw.bench"])
def test_bad_config_is_one_line(module, tmp_path):
    missing = tmp_path / "missing.yaml"
    result = subprocess.run([sys.executable, "-m", module, "--config", str(missing), "--out",
                             str(tmp_path / "bench.json")], capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "bench.json").exists()
