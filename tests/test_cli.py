"""The ``lmflow`` command line: outputs, every bad input (one line, non-zero exit, no output left)."""

import io
import importlib.util
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image

from models import QuantizedModel, load_network_config, random_weights, read_flo, resize_flow, save_weights
from models.errors import WeightsError
from models.network import CONFIG_DIR, default_config_path, float_ends_config_path
from sw import cli
from sw.backends import BACKENDS
from sw.errors import AcceleratorError
from sw.runtime import FlowRuntime

W, H = 100, 70          # image size, not the network's 128x96


def smooth_image(seed, shift=0, size=(W, H)):
    rng = np.random.default_rng(seed)
    w, h = size
    small = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(small).resize((w + 16, h), Image.Resampling.BILINEAR))
    return big[:, 8 - shift:8 - shift + w]


def save(path, rgb):
    Image.fromarray(rgb).save(path)
    return str(path)


@pytest.fixture(scope="module")
def cfg():
    # The float-ends division, whose host layers the error cases below exercise; the fully
    # quantized default network: test_flow_of_the_fully_quantized_network and
    # test_shipped_weights_follow_the_configuration.
    return load_network_config(float_ends_config_path())


@pytest.fixture(scope="module")
def files(tmp_path_factory, cfg):
    d = tmp_path_factory.mktemp("inputs")
    weights = random_weights(cfg, seed=0)
    save_weights(d / "w.npz", weights, cfg)
    tiny = load_network_config(os.path.join(CONFIG_DIR, "lmflownet_tiny.yaml"))
    save_weights(d / "tiny.npz", random_weights(tiny, seed=0), tiny)
    png = d / "a.png"
    save(png, smooth_image(1))
    data = png.read_bytes()
    (d / "truncated.png").write_bytes(data[:len(data) // 2])
    (d / "junk.png").write_text("not an image\n")
    (d / "junk.npz").write_text("not weights\n")
    (d / "bad.yaml").write_text("input: [1, 2\n")
    return types.SimpleNamespace(
        dir=d, weights=str(d / "w.npz"), tiny=str(d / "tiny.npz"), model=QuantizedModel(cfg, weights),
        img1=str(png), img2=save(d / "b.png", smooth_image(1, shift=3)),
        small=save(d / "small.png", smooth_image(2, size=(64, 48))),
        truncated=str(d / "truncated.png"), junk=str(d / "junk.png"), junk_npz=str(d / "junk.npz"),
        bad_yaml=str(d / "bad.yaml"))


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_error(result, status, pattern):
    code, _, err = result
    lines = err.splitlines()
    assert code == status, err
    assert len(lines) == 1 and lines[0].startswith("lmflow: error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err


# -- results ------------------------------------------------------------------------------------

def test_flow_writes_the_flo_and_png_at_the_image_size(capsys, tmp_path, files, cfg):
    out, png = tmp_path / "out.flo", tmp_path / "out.png"
    code, stdout, err = run(capsys, "flow", files.img1, files.img2, "-o", out, "--png", png, "--weights",
                            files.weights)
    assert code == 0, err
    assert err == "" and "out.flo: 100x70 flow (golden backend" in stdout
    flow = read_flo(out)
    frames = np.concatenate([np.asarray(Image.open(p).convert("RGB").resize((cfg.width, cfg.height),
                                                                            Image.Resampling.BILINEAR))
                             for p in (files.img1, files.img2)], axis=2)
    expected = resize_flow(files.model.run(frames).flow[0], H, W)
    assert flow.shape == (H, W, 2) and np.array_equal(flow, expected)
    with Image.open(png) as im:
        assert im.size == (W, H) and im.mode == "RGB"
    assert sorted(os.listdir(tmp_path)) == ["out.flo", "out.png"]


def test_flow_of_the_fully_quantized_network(capsys, tmp_path, files):
    """Weights of the fully quantized default network run it (the manifest chooses the division) on
    the default accelerator; one whose activation buffer cannot hold conv1's frame-pair source is
    refused in one line."""
    import yaml
    from models.hwconfig import load_hw_config
    qcfg = load_network_config()
    save_weights(tmp_path / "q.npz", random_weights(qcfg, seed=0), qcfg)
    hw = load_hw_config().to_dict()
    hw["engine"] = dict(hw.get("engine") or {}, act_buffer_words=4096)
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(hw))
    out = tmp_path / "out.flo"
    code, _, err = run(capsys, "flow", files.img1, files.img2, "-o", out, "--weights", tmp_path / "q.npz")
    assert code == 0, err
    frames = np.concatenate([np.asarray(Image.open(p).convert("RGB").resize((qcfg.width, qcfg.height),
                                                                            Image.Resampling.BILINEAR))
                             for p in (files.img1, files.img2)], axis=2)
    model = QuantizedModel(qcfg, random_weights(qcfg, seed=0))
    assert np.array_equal(read_flo(out), resize_flow(model.run(frames).flow[0], H, W))
    # on an activation buffer of 4096 words: one line naming the layer
    assert_error(run(capsys, "flow", files.img1, files.img2, "-o", tmp_path / "x.flo", "--weights",
                     tmp_path / "q.npz", "--hw-config", tmp_path / "small.yaml"), 2,
                 r"layer conv1 cannot run on this engine configuration: capacity")
    assert not (tmp_path / "x.flo").exists()


def test_video_from_a_directory_of_images(capsys, tmp_path, files):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        save(frames / f"f{i:02d}.png", smooth_image(5, shift=2 * i))
    (frames / "notes.txt").write_text("not a frame")
    code, stdout, err = run(capsys, "video", frames, "-o", tmp_path / "out", "--png", "--weights", files.weights)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "out")) == ["flow_00000.flo", "flow_00000.png", "flow_00001.flo",
                                                    "flow_00001.png"]
    assert read_flo(tmp_path / "out" / "flow_00001.flo").shape == (H, W, 2)
    assert "2 flow fields" in stdout


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_video_progress_bar_on_a_terminal(capsys, tmp_path, files, monkeypatch, quiet):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        save(frames / f"{i}.png", smooth_image(5, shift=i))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert cli.main(["video", str(frames), "-o", str(tmp_path / "out"), "--weights", files.weights]
                    + (["-q"] if quiet else [])) == 0
    bar = terminal.getvalue()
    # the bar is drawn (how far it got before it was cleared depends on tqdm's refresh interval)
    assert ("/2 [" in bar and "pair" in bar) != quiet


def test_video_from_a_video_file(capsys, tmp_path, files):
    cv2 = pytest.importorskip("cv2")
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for i in range(3):
        writer.write(np.ascontiguousarray(smooth_image(7, shift=i)[..., ::-1]))
    writer.release()
    code, _, err = run(capsys, "video", path, "-o", tmp_path / "out", "-q", "--weights", files.weights)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "out")) == ["flow_00000.flo", "flow_00001.flo"]


def test_the_console_script(tmp_path, files):
    script = os.path.join(os.path.dirname(sys.executable), "lmflow")
    if not os.path.exists(script):
        pytest.skip("the lmflow console script is not installed in this environment")
    out = tmp_path / "out.flo"
    ok = subprocess.run([script, "flow", files.img1, files.img2, "-o", str(out), "--weights", files.weights],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert read_flo(out).shape == (H, W, 2)
    bad = subprocess.run([script, "flow", files.img1, str(tmp_path / "nope.png"), "-o", str(tmp_path / "x.flo"),
                          "--weights", files.weights], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr == f"lmflow: error: {tmp_path / 'nope.png'}: no such file\n"
    assert not os.path.exists(tmp_path / "x.flo")


# -- bad input: lmflow flow ---------------------------------------------------------------------

FLOW_ERRORS = {
    "missing image": (lambda f: [f.img1, f.dir / "nope.png"], 2, r"nope\.png: no such file$"),
    "directory as image": (lambda f: [f.dir, f.img2], 2, r"is a directory, not an image"),
    "two sizes": (lambda f: [f.img1, f.small], 2,
                  r"the frames have two sizes: .*a\.png is 100x70, .*small\.png is 64x48"),
    "unreadable image": (lambda f: [f.img1, f.junk], 2, r"junk\.png: cannot read image: cannot identify"),
    "truncated image": (lambda f: [f.truncated, f.img2], 2, r"truncated\.png: cannot read image"),
    "weights file missing": (lambda f: [f.img1, f.img2, "--weights", f.dir / "none.npz"], 2,
                             r"none\.npz: weights file not found"),
    "not a weights file": (lambda f: [f.img1, f.img2, "--weights", f.junk_npz], 2,
                           r"junk\.npz: not a weights \(\.npz\) file"),
    "weights of another network": (lambda f: [f.img1, f.img2, "--weights", f.tiny, "--config",
                                              default_config_path()], 2, r"tiny\.npz: layer 'conv1': weight must"),
    "bad configuration": (lambda f: [f.img1, f.img2, "--weights", f.weights, "--config", f.bad_yaml], 2,
                          r"bad\.yaml: not valid YAML"),
    "unknown backend": (lambda f: [f.img1, f.img2, "--weights", f.weights, "--backend", "fpga"], 2,
                        r"unknown backend 'fpga' \(known: de10nano, golden, rtl\)$"),
    "bad timeout": (lambda f: [f.img1, f.img2, "--weights", f.weights, "--timeout", "0"], 2,
                    r"--timeout must be a positive number"),
}


@pytest.mark.parametrize("case", FLOW_ERRORS)
def test_flow_bad_input(capsys, tmp_path, files, case):
    args, status, pattern = FLOW_ERRORS[case]
    result = run(capsys, "flow", *args(files), "-o", tmp_path / "out.flo", "--png", tmp_path / "out.png")
    assert_error(result, status, pattern)
    assert os.listdir(tmp_path) == []


def test_usage_errors_are_one_line(capsys, tmp_path, files):
    assert_error(run(capsys), 2, r"the following arguments are required: COMMAND")
    assert_error(run(capsys, "flow", files.img1, files.img2), 2, r"required: -o/--output")
    assert_error(run(capsys, "frobnicate"), 2, r"invalid choice: 'frobnicate'")
    assert_error(run(capsys, "flow", files.img1, files.img2, "-o", tmp_path / "no" / "out.flo"), 2,
                 r"out\.flo: the output directory .*no does not exist")
    assert os.listdir(tmp_path) == []
    assert cli.main(["--help"]) == 0
    assert "lmflow" in capsys.readouterr().out


def test_no_shipped_weights(capsys, tmp_path, files, monkeypatch):
    monkeypatch.setitem(sys.modules, "models.pretrained", None)
    assert_error(run(capsys, "flow", files.img1, files.img2, "-o", tmp_path / "out.flo"), 2,
                 r"no shipped weights in this build .*; pass --weights W\.npz")
    fake = types.ModuleType("models.pretrained")

    def missing(cfg=None):
        raise WeightsError("models/weights/x.npz: the shipped weights are missing")

    fake.load_default_weights = missing
    monkeypatch.setitem(sys.modules, "models.pretrained", fake)
    assert_error(run(capsys, "flow", files.img1, files.img2, "-o", tmp_path / "out.flo"), 2,
                 r"x\.npz: the shipped weights are missing$")
    assert os.listdir(tmp_path) == []


def test_shipped_weights_are_the_default(capsys, tmp_path, files, monkeypatch):
    fake = types.ModuleType("models.pretrained")
    fake.load_default_weights = lambda cfg=None: (random_weights(files.model.cfg, seed=0), files.model.cfg, {})
    monkeypatch.setitem(sys.modules, "models.pretrained", fake)
    code, _, err = run(capsys, "flow", files.img1, files.img2, "-o", tmp_path / "out.flo")
    assert code == 0, err
    assert read_flo(tmp_path / "out.flo").shape == (H, W, 2)


def test_shipped_weights_follow_the_configuration(capsys, tmp_path, files):
    """Without --weights the shipped file of the configuration's division runs: the fully quantized
    one by default, the float-ends one with --config lmflownet_d3_96x128_float_ends.yaml."""
    from models.pretrained import load_default_weights
    frames = np.concatenate([np.asarray(Image.open(p).convert("RGB").resize((files.model.cfg.width,
                                                                             files.model.cfg.height),
                                                                            Image.Resampling.BILINEAR))
                             for p in (files.img1, files.img2)], axis=2)
    flows = {}
    for name, extra in (("quantized", []), ("float", ["--config", float_ends_config_path()])):
        out = tmp_path / f"{name}.flo"
        code, _, err = run(capsys, "flow", files.img1, files.img2, "-o", out, *extra)
        assert code == 0, err
        weights, cfg, _ = load_default_weights(load_network_config(*extra[1:]))
        assert cfg.ends == name
        model = QuantizedModel(cfg, weights)
        flows[name] = read_flo(out)
        assert np.array_equal(flows[name], resize_flow(model.run(frames).flow[0], H, W))
    assert not np.array_equal(flows["quantized"], flows["float"])


def test_backend_missing_from_the_build(capsys, tmp_path, files, monkeypatch):
    monkeypatch.setitem(BACKENDS, "rtl", "sw.backends._not_built_rtl")
    assert_error(run(capsys, "flow", files.img1, files.img2, "-o", tmp_path / "out.flo", "--weights",
                     files.weights, "--backend", "rtl"), 1, r"the rtl backend is not available in this build")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.path.exists("/proc/device-tree/model")
                    and b"DE10" in open("/proc/device-tree/model", "rb").read(), reason="on the board")
def test_de10nano_off_the_board(capsys, tmp_path, files):
    assert_error(run(capsys, "flow", files.img1, files.img2, "-o", tmp_path / "out.flo", "--weights",
                     files.weights, "--backend", "de10nano"), 1, r"de10nano backend: ")
    assert os.listdir(tmp_path) == []


def test_a_device_failure_leaves_no_output(capsys, tmp_path, files, monkeypatch):
    def fail(self, frames, **kw):
        raise AcceleratorError("golden backend: accelerator error 'kernel' (code 1) at descriptor 0 of 5")

    monkeypatch.setattr(FlowRuntime, "run", fail)
    assert_error(run(capsys, "flow", files.img1, files.img2, "-o", tmp_path / "out.flo", "--png",
                     tmp_path / "out.png", "--weights", files.weights), 1, r"accelerator error 'kernel'")
    frames = tmp_path / "frames"
    frames.mkdir()
    save(frames / "0.png", smooth_image(1))
    save(frames / "1.png", smooth_image(1))
    assert_error(run(capsys, "video", frames, "-o", tmp_path / "out", "--weights", files.weights), 1,
                 r"accelerator error 'kernel'")
    assert sorted(os.listdir(tmp_path)) == ["frames"]


# -- bad input: lmflow video --------------------------------------------------------------------

def test_video_bad_input(capsys, tmp_path, files):
    one = tmp_path / "one"
    one.mkdir()
    save(one / "0.png", smooth_image(1))
    assert_error(run(capsys, "video", one, "-o", tmp_path / "out", "--weights", files.weights), 2,
                 r"one: needs at least two image files .*found 1$")
    sizes = tmp_path / "sizes"
    sizes.mkdir()
    save(sizes / "0.png", smooth_image(1))
    save(sizes / "1.png", smooth_image(1, size=(64, 48)))
    assert_error(run(capsys, "video", sizes, "-o", tmp_path / "out", "--weights", files.weights), 2,
                 r"the frames have two sizes: .*0\.png is 100x70, .*1\.png is 64x48")
    assert_error(run(capsys, "video", tmp_path / "nothing", "-o", tmp_path / "out", "--weights", files.weights), 2,
                 r"nothing: no such file or directory")
    if importlib.util.find_spec("cv2") is None:
        assert_error(run(capsys, "video", files.junk, "-o", tmp_path / "out", "--weights", files.weights), 1,
                     r"junk\.png: reading video files needs OpenCV")
    else:
        assert_error(run(capsys, "video", files.junk, "-o", tmp_path / "out", "--weights", files.weights), 2,
                     r"junk\.png: cannot read video")
    assert_error(run(capsys, "video", sizes, "-o", tmp_path / "out", "--backend", "fpga"), 2, r"unknown backend")
    assert sorted(os.listdir(tmp_path)) == ["one", "sizes"]


def test_video_with_a_corrupt_frame_leaves_no_output(capsys, tmp_path, files):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        save(frames / f"{i}.png", smooth_image(1, shift=i))
    data = (frames / "2.png").read_bytes()
    (frames / "2.png").write_bytes(data[:len(data) // 2])         # the header still reads
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier content")
    assert_error(run(capsys, "video", frames, "-o", out, "--weights", files.weights), 2,
                 r"2\.png: cannot read image")
    assert os.listdir(out) == ["keep.txt"]
    assert_error(run(capsys, "video", frames, "-o", tmp_path / "new", "--weights", files.weights), 2,
                 r"2\.png: cannot read image")
    assert not os.path.exists(tmp_path / "new")


def test_video_file_without_opencv(capsys, tmp_path, files, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0" * 64)
    assert_error(run(capsys, "video", clip, "-o", tmp_path / "out", "--weights", files.weights), 1,
                 r"reading video files needs OpenCV: pip install 'lmflownet\[eval\]'")
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4"]
