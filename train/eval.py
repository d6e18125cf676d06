"""Average end-point error of LMFlowNet and of classical baselines, on synthetic and real images.

``python -m train.eval`` (``make eval``) measures, on the held-out synthetic set (seed stream
:data:`models.synthetic.EVAL_STREAM`, pairs ``0 .. --pairs-1``, never used in training), on
held-out real photographs (below) and, with ``--chairs PATH``, on the Flying Chairs validation
split:

* ``float``: the float network as trained (the float phase of ``make train``: the float-ends
  division's network in float, frames in [0, 1], every layer with float weights, batch norm and
  leaky ReLU), :class:`models.golden.FloatModel` on the float weights;
* ``float_ends``: the float-ends division (``lmflownet_d3_96x128_float_ends.yaml``: conv1,
  upsample_flow3 and predict_flow2 in float on the host, the rest on the accelerator) through
  :class:`models.golden.QuantizedModel`;
* ``quantized``: the fully quantized default network through
  :class:`models.golden.QuantizedModel`, i.e. every layer exactly as the accelerator computes it
  and the host's dequantization of predict_flow2;
* ``farneback``: OpenCV ``calcOpticalFlowFarneback`` (pyramid scale 0.5, 3 levels, window 15,
  3 iterations, poly_n 5, poly_sigma 1.2) on the grey frames;
* ``dis``: OpenCV DIS optical flow, ``DISOPTICAL_FLOW_PRESET_MEDIUM``, on the grey frames.

Every method sees the same 96x128 input. EPE is the mean over all pixels of
``|flow - ground truth|``. On Flying Chairs (384x512) the frames are reduced to the network's
resolution with an area filter and the predicted flow is brought back to 384x512 by bilinear
interpolation with its vectors scaled by 4, so EPE is in full-resolution pixels, as the original
work's figures. Needs numpy, Pillow and OpenCV (``pip install -e .[eval]``), not PyTorch.

Real images (entry ``real``): photo pairs of :mod:`models.photoscenes` made of the held-out
photographs only (``split="eval"``, seed stream ``PHOTO_EVAL_STREAM``, pairs ``0 ..
--real-pairs-1``): a photo warped by a known smooth or piecewise field (camera motion with
rotation, scaling and deformation, independently moving objects with occlusions), with noise,
blur, JPEG and brightness differences between the frames. Besides the mean EPE: the EPE by
ground-truth magnitude bin (pixels pooled over the pairs), the *noise floor* (mean ``|flow|``
on ``--identical-pairs`` pairs of identical frames), the *static floor* (the same on static
pairs whose frames differ only by noise and photometric changes), the quantized model's EPE
with other upsamplings of its last layer (``upsampling``), and ``stereo``: the real Middlebury
2014 Motorcycle pair (two cameras, ground-truth disparity; pixels without disparity left out).
A picture grid (frames, truth, every method's flow, the colour wheel) goes to ``--grid``.

Writes ``build/eval.json`` as ``{dataset: {float, float_ends, quantized, farneback, dis, ...}}`` and prints
Markdown tables, next to the original work's Flying Chairs figures.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from models.errors import LMFlowError
from models.golden import FloatModel, QuantizedModel
from models.pretrained import default_float_ends_weights_path, default_float_weights_path, default_weights_path
from models.synthetic import EVAL_STREAM, SyntheticConfig, make_pair
from models.weights import load_weights

__all__ = ["METHODS", "NETWORKS", "NAMES", "ORIGINAL", "main", "evaluate", "evaluate_real", "predict",
           "load_networks", "farneback", "dis", "upsample_flow", "format_table", "format_real_table"]

#: Every method of the tables, networks first.
METHODS = ("float", "float_ends", "quantized", "farneback", "dis")
#: The networks among them (``{name: model}`` of :func:`evaluate`; a network may be left out).
NETWORKS = ("float", "float_ends", "quantized")
#: Column titles of the tables.
NAMES = {"float": "float", "float_ends": "float ends", "quantized": "quantized", "farneback": "Farneback",
         "dis": "DIS"}
#: EPE of the original LMFlowNet (lm_flownet_3_q_quarter, conv1 = 64 channels) on Flying Chairs val.
ORIGINAL = {"float": 6.403, "quantized": 9.448}


def _gray(frame):
    import cv2
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def farneback(frame1, frame2):
    """OpenCV Farneback flow (H, W, 2) between two RGB uint8 frames."""
    import cv2
    return cv2.calcOpticalFlowFarneback(_gray(frame1), _gray(frame2), None, 0.5, 3, 15, 3, 5, 1.2, 0)


_DIS = None


def dis(frame1, frame2):
    """OpenCV DIS flow (medium preset) (H, W, 2) between two RGB uint8 frames."""
    import cv2
    global _DIS
    if _DIS is None:
        _DIS = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return _DIS.calc(_gray(frame1), _gray(frame2), None)


def upsample_flow(flow, height, width):
    """Bilinear resize of a flow (h, w, 2) to (height, width), vectors scaled by the size ratio."""
    import cv2
    h, w = flow.shape[:2]
    out = cv2.resize(np.ascontiguousarray(flow, dtype=np.float32), (width, height),
                     interpolation=cv2.INTER_LINEAR)
    return out * np.array([width / w, height / h], dtype=np.float32)


def _epe(pred, gt):
    return np.linalg.norm(pred.astype(np.float64) - gt.astype(np.float64), axis=-1)


def _methods(nets):
    """The methods measured with the networks ``nets``: those of :data:`NETWORKS` present, then
    Farneback and DIS."""
    return tuple(m for m in METHODS if m in nets or m not in NETWORKS)


def _network_flows(nets, frames):
    """``{name: final flow (N, H, W, 2)}`` of every network on a batch of frames, and the
    quantized model's predict_flow2 x flow_scale (N, h, w, 2) before upsampling (None without a
    ``"quantized"`` network)."""
    flows, qlow = {}, None
    for name, model in nets.items():
        if isinstance(model, QuantizedModel):
            r = model.run(frames, keep_tensors=name == "quantized")
            flows[name] = r.flow
            if name == "quantized":
                qlow = np.asarray(model.flow_value("predict_flow2", r.tensors["predict_flow2"]), np.float32) \
                    * np.float32(model.cfg.flow_scale)
        else:
            flows[name] = model.run(frames)[0]
    return flows, qlow


def evaluate(pairs, nets, batch=16, progress=None):
    """Mean EPE of every method over ``pairs``, an iterable of ``(frames (h, w, 6) uint8,
    ground truth (H, W, 2))``; predictions at a lower resolution than the ground truth are
    upsampled (:func:`upsample_flow`).

    Parameters
    ----------
    nets : dict
        ``{name: model}``, names from :data:`NETWORKS`, a :class:`models.golden.FloatModel` or
        :class:`models.golden.QuantizedModel` each.

    Returns
    -------
    epe : dict
        ``{method: mean EPE}`` for the networks given, Farneback and DIS.
    count : int
    """
    methods = _methods(nets)
    sums = dict.fromkeys(methods, 0.0)
    count = 0
    buf = []

    def flush():
        nonlocal count
        if not buf:
            return
        preds, _ = predict(np.stack([f for f, _ in buf]), nets)
        for out, (_, gt) in zip(preds, buf):
            for m in methods:
                p = out[m]
                if p.shape[:2] != gt.shape[:2]:
                    p = upsample_flow(p, *gt.shape[:2])
                sums[m] += float(_epe(p, gt).mean())
            count += 1
        if progress is not None:
            progress.update(len(buf))
        buf.clear()

    for item in pairs:
        buf.append(item)
        if len(buf) == batch:
            flush()
    flush()
    return {m: sums[m] / max(count, 1) for m in methods}, count


def predict(frames, nets):
    """Every method's flow on a batch of frames (N, H, W, 6): a list of ``{method: flow}`` and
    the quantized model's predict_flow2 x flow_scale (N, h, w, 2), before upsampling (None
    without a ``"quantized"`` network)."""
    flows, qlow = _network_flows(nets, frames)
    out = [dict({name: f[i] for name, f in flows.items()}, farneback=farneback(fr[..., :3], fr[..., 3:]),
                dis=dis(fr[..., :3], fr[..., 3:])) for i, fr in enumerate(frames)]
    return out, qlow


def evaluate_real(nets, n_pairs, n_still, grid_rows=4, batch=16, progress=None):
    """The ``real`` entry (:mod:`train.real`): held-out photo pairs, identical and static pairs,
    the Middlebury stereo pair, for the networks ``nets`` (``{name: model}``, with a
    ``"quantized"`` one: the upsampling figures are its) and Farneback and DIS. Returns
    ``(entry, grid rows, grid columns)``."""
    from . import real
    if "quantized" not in nets:
        raise ValueError(f"evaluate_real needs a 'quantized' network, not only {sorted(nets)}")
    cfg = nets["quantized"].cfg
    methods = _methods(nets)
    acc = real.RealEvaluation(methods)
    rows = []

    def batches(pairs):
        buf = []
        for p in pairs:
            buf.append(p)
            if len(buf) == batch:
                yield buf
                buf = []
        if buf:
            yield buf

    for buf in batches(real.photo_pairs(cfg.height, cfg.width, n_pairs, "moving")):
        preds, qlow = predict(np.stack([p.frames for p in buf]), nets)
        for p, pr, ql in zip(buf, preds, qlow):
            acc.add_moving(p.flow, pr, ql, p.frame1)
            if len(rows) < grid_rows:
                mag = np.linalg.norm(p.flow, axis=-1)
                rows.append(real.grid_row(p.frames, p.flow, pr, methods,
                                          f"held-out photo pair {acc.count - 1}: mean |flow| {mag.mean():.1f} px, "
                                          f"{len(p.scene.layers) - 1} moving objects"))
        if progress is not None:
            progress.update(len(buf))
    for kind in ("identical", "static"):
        for buf in batches(real.photo_pairs(cfg.height, cfg.width, n_still, kind)):
            preds, _ = predict(np.stack([p.frames for p in buf]), nets)
            for k, (p, pr) in enumerate(zip(buf, preds)):
                if kind == "identical" and acc.floor_count[kind] == 0:
                    rows.append(real.grid_row(p.frames, p.flow, pr, methods,
                                              "identical frames (the noise floor)", max_flow=2.0))
                acc.add_still(kind, pr)
            if progress is not None:
                progress.update(len(buf))
    frames, gt, valid = real.stereo_pair(cfg.height, cfg.width)
    preds, _ = predict(frames[None], nets)
    acc.set_stereo(gt, valid, preds[0])
    rows.append(real.grid_row(frames, gt, preds[0], methods,
                              "Middlebury 2014 Motorcycle, real stereo pair (black: no disparity)", valid=valid))
    if progress is not None:
        progress.update(1)
    columns = ["frame 1", "frame 2", "truth"] + list(methods)
    return acc.result(), rows, columns


def _present(r):
    """The methods of an entry ``r`` (a dict with a key per method), in table order."""
    return [m for m in METHODS if m in r]


def format_real_table(r):
    """Markdown tables of the ``real`` entry: mean EPE, noise floors, stereo, per-bin EPE."""
    methods = _present(r)
    lines = ["| real images (held-out photos) | " + " | ".join(NAMES[m] for m in methods) + " |",
             "|---|" + "---|" * len(methods)]
    lines.append(f"| EPE, {r['pairs']} moving pairs | " + " | ".join(f"{r[m]:.3f}" for m in methods) + " |")
    lines.append(f"| noise floor: mean abs flow, {r['floor_pairs']['identical']} identical pairs | "
                 + " | ".join(f"{r['noise_floor'][m]:.3f}" for m in methods) + " |")
    lines.append(f"| static floor: mean abs flow, {r['floor_pairs']['static']} static pairs | "
                 + " | ".join(f"{r['static_floor'][m]:.3f}" for m in methods) + " |")
    if "stereo" in r:
        lines.append("| EPE, Middlebury Motorcycle stereo pair | "
                     + " | ".join(f"{r['stereo'][m]:.3f}" for m in methods) + " |")
    for label, b in r["bins"].items():
        vals = " | ".join("-" if b[m] is None else f"{b[m]:.3f}" for m in methods)
        lines.append(f"| EPE where the true flow is {label} px ({100 * b['pixels']:.0f}% of pixels) | {vals} |")
    u = r["upsampling"]
    lines.append("")
    lines.append(f"Quantized model, last layer upsampled by: nearest {u['nearest']:.3f}, bilinear "
                 f"{u['bilinear']:.3f}, joint bilateral (frame-guided) {u['guided']:.3f} px EPE.")
    return "\n".join(lines)


def format_table(results, counts=None):
    """Markdown table of ``{dataset: {method: epe}}`` plus the original work's figures (a
    network not measured shows as ``-``)."""
    def cell(r, m):
        return f"{r[m]:.3f}" if m in r else "-"

    lines = ["| data set | pairs | float | float ends | quantized | quantized / float | Farneback | DIS |",
             "|---|---|---|---|---|---|---|---|"]
    for ds, r in results.items():
        if not all(m in r for m in ("quantized", "farneback", "dis")):
            continue
        n = (counts or {}).get(ds, "")
        ratio = f"{r['quantized'] / r['float']:.2f}x" if "float" in r else "-"
        lines.append(f"| {ds} | {n} | {cell(r, 'float')} | {cell(r, 'float_ends')} | {r['quantized']:.3f} | "
                     f"{ratio} | {r['farneback']:.3f} | {r['dis']:.3f} |")
    lines.append(f"| Flying Chairs val, original work (float ends) | 640 | {ORIGINAL['float']:.3f} | "
                 f"{ORIGINAL['quantized']:.3f} | - | - | - | - |")
    return "\n".join(lines)


def load_networks(q_path, fe_path=None, f_path=None):
    """The networks of the evaluation: ``({name: model}, {name: path}, {name: meta})``.

    Parameters
    ----------
    q_path : str
        Weights of the ``quantized`` network (run by :class:`models.golden.QuantizedModel` on the
        configuration stored in the file).
    fe_path, f_path : str, optional
        Weights of the ``float_ends`` network (:class:`models.golden.QuantizedModel`) and of the
        ``float`` network (:class:`models.golden.FloatModel`), each on its own stored
        configuration; left out when None.
    """
    nets, paths, metas = {}, {}, {}
    for name, path in (("float", f_path), ("float_ends", fe_path), ("quantized", q_path)):
        if path is None:
            continue
        weights, cfg, meta = load_weights(path)
        nets[name] = FloatModel(cfg, weights) if name == "float" else QuantizedModel(cfg, weights)
        paths[name], metas[name] = path, meta
    sizes = {(m.cfg.height, m.cfg.width) for m in nets.values()}
    if len(sizes) != 1:
        raise ValueError(f"the networks of the evaluation must share one input size, not "
                         f"{ {n: (m.cfg.height, m.cfg.width) for n, m in nets.items()} }")
    return nets, paths, metas


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m train.eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None,
                    help="weights of the quantized network (default: the shipped fully quantized ones)")
    ap.add_argument("--float-ends-weights", default=None,
                    help="weights of the float-ends division (default: the shipped ones when --weights is "
                         "not given, else none: no float_ends entry)")
    ap.add_argument("--float-weights", default=None, help="float weights (default: the shipped ones)")
    ap.add_argument("--pairs", type=int, default=500, help="held-out synthetic pairs")
    ap.add_argument("--real-pairs", type=int, default=200, help="held-out real-photo pairs (0: no real entry)")
    ap.add_argument("--still-pairs", type=int, default=40,
                    help="identical-frame pairs (noise floor) and as many static pairs")
    ap.add_argument("--grid", default=None,
                    help="picture grid PNG of the real pairs (default: eval/real_grid.png beside --out)")
    ap.add_argument("--chairs", default=None, help="Flying Chairs directory (validation split)")
    ap.add_argument("--chairs-split-file", default=None)
    ap.add_argument("--out", default=os.path.join("build", "eval.json"))
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    import cv2
    cv2.setNumThreads(1)
    try:
        q_path = args.weights or default_weights_path()
        fe_path = args.float_ends_weights or (None if args.weights else default_float_ends_weights_path())
        f_path = args.float_weights or default_float_weights_path()
        nets, paths, metas = load_networks(q_path, fe_path, f_path)
    except (LMFlowError, ValueError) as e:      # a missing, corrupt or mismatched weights file
        ap.error(str(e))
    cfg = nets["quantized"].cfg

    try:
        from tqdm import tqdm
    except ImportError:   # the progress bar is optional here
        tqdm = None

    def bar(total, desc):
        if tqdm is None or args.no_progress:
            return None
        return tqdm(total=total, desc=desc, unit="pair", file=sys.stderr)

    results, counts, timing = {}, {}, {}
    syn = SyntheticConfig(height=cfg.height, width=cfg.width)

    def synthetic_pairs():
        for i in range(args.pairs):
            p = make_pair(i, EVAL_STREAM, syn)
            yield p.frames, p.flow

    t = time.time()
    b = bar(args.pairs, "synthetic")
    results["synthetic"], counts["synthetic"] = evaluate(synthetic_pairs(), nets, progress=b)
    timing["synthetic"] = round(time.time() - t, 1)
    if b is not None:
        b.close()

    grid_path = None
    if args.real_pairs > 0:
        t = time.time()
        b = bar(args.real_pairs + 2 * args.still_pairs + 1, "real")
        results["real"], rows, columns = evaluate_real(nets, args.real_pairs, args.still_pairs, progress=b)
        counts["real"] = args.real_pairs
        timing["real"] = round(time.time() - t, 1)
        if b is not None:
            b.close()
        from .real import write_grid
        grid_path = args.grid or os.path.join(os.path.dirname(os.path.abspath(args.out)), "eval", "real_grid.png")
        write_grid(grid_path, rows, columns)

    if args.chairs:
        from models.chairs import FlyingChairs, resize_frame
        ds = FlyingChairs(args.chairs, "val", args.chairs_split_file)

        def chairs_pairs():
            for k in range(len(ds)):
                f1, f2, flow = ds[k]
                f1, f2 = resize_frame(f1, cfg.height, cfg.width), resize_frame(f2, cfg.height, cfg.width)
                yield np.concatenate([f1, f2], axis=-1), flow

        t = time.time()
        b = bar(len(ds), "chairs")
        results["flying_chairs_val"], counts["flying_chairs_val"] = evaluate(chairs_pairs(), nets, progress=b)
        timing["flying_chairs_val"] = round(time.time() - t, 1)
        if b is not None:
            b.close()

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    out = {ds: (r if ds == "real" else {m: round(v, 4) for m, v in r.items()}) for ds, r in results.items()}
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.out)
    details = {"pairs": counts, "seconds": timing, "weights": paths,
               "networks": {n: m.cfg.describe() for n, m in nets.items()},
               "training": metas, "opencv": cv2.__version__}
    tmp = os.path.splitext(args.out)[0] + "_details.json.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(details, f, indent=2)
    os.replace(tmp, tmp[:-len(".tmp")])
    print(format_table(results, counts))
    if "real" in results:
        print()
        print(format_real_table(results["real"]))
        print(f"wrote {grid_path}")
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
