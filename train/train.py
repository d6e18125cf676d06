"""Train LMFlowNet: a float model, then the quantized model fine-tuned from it (QAT).

``python -m train.train`` (``make train``) runs two phases on the synthetic generator:

1. ``float``: the float network (batch norm, leaky ReLU) from scratch; exported to
   ``<out-dir>/<config>_float.npz`` (``<config>_float_phase.npz`` for a fully quantized
   configuration: :func:`weights_paths`);
2. ``quant``: the same network initialized from the float one, with binary channel-wise weights
   and 2-bit activations (straight-through estimators); exported to ``<out-dir>/<config>.npz``,
   the weights the golden model, the CLI and the benchmarks load.

A phase lasts ``--float-minutes`` / ``--quant-minutes`` of training time (22 + 18 by default:
about 45 minutes with start-up and the final steps on a 2-core CPU; a GPU runs more steps in
the same time) or ``--float-steps`` / ``--quant-steps`` steps, whichever comes first; with the
minutes set to 0 the schedule follows the steps alone (reproducible step for step). Both use
Adam, a short warm-up and a cosine learning-rate decay over the phase (its fraction of the time
budget or of the steps), FlowNet's multi-scale EPE loss, and end with a re-estimation of the
batch-norm statistics on training batches and a correction of predict_flow2's bias on
full-size training pairs (:func:`correct_flow_bias`). A checkpoint
(``<work-dir>/checkpoint.pt``) is written every ``--checkpoint-minutes`` and at the end of a
phase; a new run with the same ``--work-dir`` resumes from it (``--restart`` starts over). The
pair pool and the augmentation draws are functions of the step, so a resumed run continues the
same schedule. Uses CUDA when available.
"""

import argparse
import json
import math
import os
import shlex
import sys
import time

import numpy as np
import torch

from models.network import default_config_path, load_network_config
from models.photoscenes import PHOTO_VAL_STREAM, PhotoSceneConfig, make_photo_batch
from models.synthetic import VAL_STREAM, SyntheticConfig, make_batch

from .data import PairPool, augment, render_batch, to_tensors
from models.weights import load_weights

from .export import import_weights, save_model
from .losses import downsample_flow, epe, multiscale_epe
from .model import LMFlowNet

__all__ = ["main", "parse_args", "weights_paths", "evaluate_val", "evaluate_vals", "load_val"]

PHASES = ("float", "quant", "done")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m train.train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--config", default=default_config_path(), help="network configuration YAML")
    ap.add_argument("--out-dir", default=os.path.join("models", "weights"), help="where the weights go")
    ap.add_argument("--work-dir", default=os.path.join("build", "train"), help="checkpoint and log")
    ap.add_argument("--float-steps", type=int, default=100000, help="most steps of the float phase")
    ap.add_argument("--quant-steps", type=int, default=100000, help="most steps of the QAT phase")
    ap.add_argument("--float-minutes", type=float, default=22.0,
                    help="time budget of the float phase (0: none, the schedule follows the steps)")
    ap.add_argument("--quant-minutes", type=float, default=18.0, help="time budget of the QAT phase")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1.5e-4, help="peak learning rate of the float phase")
    ap.add_argument("--quant-lr", type=float, default=1.5e-4, help="peak learning rate of the QAT phase")
    ap.add_argument("--warmup", type=int, default=200, help="warm-up steps of each phase")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default=None,
                    help="start the float phase from these weights (.npz) instead of from scratch")
    ap.add_argument("--quant-init", default=None,
                    help="start the QAT phase from these weights (.npz) instead of from the float phase's")
    ap.add_argument("--photo-fraction", type=float, default=0.5,
                    help="share of training pairs made of real photographs (models.photoscenes); "
                         "the rest synthetic (0: synthetic only, the recipe of the shipped weights)")
    ap.add_argument("--static-weight", type=float, default=1.0,
                    help="extra loss weight of pixels whose true flow is zero (0: FlowNet's plain loss)")
    ap.add_argument("--crop", type=int, nargs=2, default=[48, 64], metavar=("H", "W"),
                    help="training crop of the full-resolution synthetic scenes")
    ap.add_argument("--pool-size", type=int, default=1024, help="rendered pairs kept in the pool")
    ap.add_argument("--fresh", type=int, default=2, help="new pairs rendered per step")
    ap.add_argument("--val-pairs", type=int, default=64,
                    help="validation pairs of each kind, synthetic and photo (own seed streams)")
    ap.add_argument("--bn-batches", type=int, default=32, help="batches for the final BN statistics")
    ap.add_argument("--bias-pairs", type=int, default=128,
                    help="full-size training pairs that set predict_flow2's bias at the end (0: none)")
    ap.add_argument("--checkpoint-minutes", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    ap.add_argument("--recalibrate-only", action="store_true",
                    help="only re-estimate the batch norms of the weights in --out-dir (as at the end "
                         "of each phase), re-measure the validation EPE and rewrite them")
    args = ap.parse_args(argv)
    if not 0.0 <= args.photo_fraction <= 1.0:
        ap.error(f"--photo-fraction must be in [0, 1], not {args.photo_fraction!r}")
    if args.static_weight < 0:
        ap.error(f"--static-weight must be >= 0, not {args.static_weight!r}")
    if args.bias_pairs < 0:
        ap.error(f"--bias-pairs must be >= 0 (0: no bias correction), not {args.bias_pairs!r}")
    return args


def weights_paths(cfg_path, out_dir):
    """``(quantized, float)`` weights file paths for a configuration file.

    The float file of a fully quantized configuration (``ends: quantized``) is named
    ``<config>_float_phase.npz``: its float network is defined on the frame pair's thermometer
    codes, not the float model of ``make eval`` (``<config>_float.npz`` of the float-ends
    configuration, shipped as ``lmflownet_d3_96x128_float.npz``), which it must not replace.
    """
    from models.network import load_network_config
    stem = os.path.splitext(os.path.basename(cfg_path))[0]
    suffix = "_float_phase" if load_network_config(cfg_path).quantized_ends else "_float"
    return os.path.join(out_dir, f"{stem}.npz"), os.path.join(out_dir, f"{stem}{suffix}.npz")


def lr_at(step, steps, peak, warmup, progress=None):
    """Linear warm-up over ``warmup`` steps, then cosine decay to 1% of the peak at the end of
    the phase; ``progress`` (0..1, the fraction of a time budget used) replaces the step-based
    progress when given."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup) if progress is None else progress
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


@torch.no_grad()
def evaluate_val(model, frames, flows, device, batch=16):
    """Mean EPE of the final flow (pixels, input resolution) over held-out pairs."""
    model.eval()
    total = 0.0
    for i in range(0, len(frames), batch):
        x, y = to_tensors(frames[i:i + batch], flows[i:i + batch], device)
        total += float(epe(model(x)["flow"], y)) * len(x)
    return total / len(frames)


def load_val(args, cfg):
    """The validation sets watched during training: ``{"synthetic": (frames, flows), "photo": ...}``
    (photo pairs from the training photos, their own seed stream: never the held-out photos)."""
    syn = SyntheticConfig(height=cfg.height, width=cfg.width)
    photo = PhotoSceneConfig(height=cfg.height, width=cfg.width, split="train")
    return {"synthetic": make_batch(range(args.val_pairs), VAL_STREAM, syn),
            "photo": make_photo_batch(range(args.val_pairs), PHOTO_VAL_STREAM, photo)}


def evaluate_vals(model, val, device):
    """:func:`evaluate_val` of every validation set: ``{name: EPE}``."""
    return {name: evaluate_val(model, *v, device) for name, v in val.items()}


def _fmt(vals):
    return " ".join(f"val-epe-{k} {v:.3f}" for k, v in vals.items())


#: Training-stream indices of the pairs that re-estimate the batch norms.
BN_INDEX_BASE = 10 ** 9


@torch.no_grad()
def recalibrate_bn(model, syn, rng, args, device):
    """Re-estimate every batch norm's running statistics (cumulative average) on augmented
    training crops (the same synthetic/photo mix), the distribution the network was trained on. (Statistics of
    full-resolution frames do not suit a network trained on crops: zero padding weighs more
    in a crop; they raised the validation EPE of the float model from 2.52 to 3.15.)"""
    model.train()
    momenta = {}
    for name, bn in model.bns.items():
        momenta[name] = bn.momentum
        bn.reset_running_stats()
        bn.momentum = None
    n = 2 * args.batch_size
    for b in range(args.bn_batches):
        frames, flows = augment(*render_batch(range(BN_INDEX_BASE + b * n, BN_INDEX_BASE + (b + 1) * n),
                                              cfg=syn, crop=tuple(args.crop),
                                              photo_fraction=args.photo_fraction), rng)
        x, _ = to_tensors(frames, flows, device)
        model(x)
    for name, bn in model.bns.items():
        bn.momentum = momenta[name]
    model.eval()


#: Training-stream indices of the pairs that correct predict_flow2's bias.
BIAS_INDEX_BASE = 2 * 10 ** 9


@torch.no_grad()
def correct_flow_bias(model, syn, args, device, batch=16):
    """Shift predict_flow2's bias so that its mean error is zero on ``args.bias_pairs`` training
    pairs at the network's full input size (the same synthetic/photo mix, no augmentation).

    The network trains on crops, where zero padding weighs more than in a whole frame: at the
    full size the output carries a constant offset (measured on the fully quantized weights
    trained on 48x64 crops, step 8 of models/weights/README.md: (+0.09, -0.81) px on training
    pairs, (+0.25, -0.41) px on identical frames), which
    predict_flow2's bias removes exactly (the flow is linear in it). Returns the correction in
    pixels (``(du, dv)``, subtracted), or None when ``args.bias_pairs`` is 0."""
    if args.bias_pairs <= 0:
        return None
    model.eval()
    name = "predict_flow2"
    total = torch.zeros(2, dtype=torch.float64, device=device)
    count = 0
    for start in range(0, args.bias_pairs, batch):
        idx = range(BIAS_INDEX_BASE + start, BIAS_INDEX_BASE + min(start + batch, args.bias_pairs))
        frames, flows = render_batch(idx, cfg=syn, photo_fraction=args.photo_fraction)
        x, y = to_tensors(frames, flows, device)
        pred = model(x)[name] * model.cfg.flow_scale
        target = downsample_flow(y, pred.shape[-2:])      # the loss's target at that level
        total += (pred - target).double().sum(dim=(0, 2, 3))
        count += pred.shape[0] * pred.shape[2] * pred.shape[3]
    offset = total / count
    conv = model.convs[name]
    conv.bias -= (offset / model.cfg.flow_scale).to(conv.bias.dtype)
    return [round(float(v), 4) for v in offset]


def _save_checkpoint(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def _log(msg, log_file):
    line = time.strftime("%Y-%m-%d %H:%M:%S ") + msg
    print(line, file=sys.stderr, flush=True)
    with open(log_file, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def run_phase(phase, model, state, pool, val, args, device, log_file, ckpt_path):
    """Train one phase from ``state["step"]``; returns when the phase's steps are done."""
    from tqdm import tqdm

    steps = args.float_steps if phase == "float" else args.quant_steps
    budget = 60 * (args.float_minutes if phase == "float" else args.quant_minutes)
    peak = args.lr if phase == "float" else args.quant_lr
    model.mode = phase
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=peak)
    if state.get("optimizer") is not None:
        opt.load_state_dict(state["optimizer"])
    step = state["step"]
    if step >= steps or (budget and state["elapsed"] >= budget):
        return
    pool.fill(step)
    cfg = model.cfg
    bar = tqdm(total=None if budget else steps, initial=step, desc=f"{phase:5s}", unit="step", dynamic_ncols=True,
               disable=args.no_progress, mininterval=1.0 if sys.stderr.isatty() else 30.0,
               file=sys.stderr)
    ema_loss = ema_epe = None
    last_ckpt = time.time()
    t_phase = time.time()
    t0 = time.time()
    step0 = step
    def elapsed():
        return state["elapsed"] + time.time() - t_phase

    while step < steps and not (budget and elapsed() >= budget):
        model.train()
        rng = np.random.default_rng([args.seed, PHASES.index(phase), step])
        frames, flows = augment(*pool.batch(rng, args.batch_size), rng)
        x, y = to_tensors(frames, flows, device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, peak, args.warmup, elapsed() / budget if budget else None)
        out = model(x)
        loss, _ = multiscale_epe(out, y, cfg.flow_scale, cfg.depth, args.static_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        pool.advance()
        step += 1
        e = float(epe(out["flow"].detach(), y))
        lv = float(loss.detach())
        ema_loss = lv if ema_loss is None else 0.98 * ema_loss + 0.02 * lv
        ema_epe = e if ema_epe is None else 0.98 * ema_epe + 0.02 * e
        bar.set_postfix(loss=f"{ema_loss:.4f}", epe=f"{ema_epe:.3f}", lr=f"{opt.param_groups[0]['lr']:.1e}",
                        refresh=False)
        bar.update(1)
        last = step == steps or (budget and elapsed() >= budget)
        if step % 250 == 0 or last:
            rate = (step - step0) * args.batch_size / (time.time() - t0)
            msg = (f"{phase} step {step} ({elapsed() / 60:.1f} min) loss {ema_loss:.4f} "
                   f"train-epe {ema_epe:.3f} lr {opt.param_groups[0]['lr']:.2e} {rate:.1f} samples/s")
            if step % 1000 == 0 or last:
                msg += " " + _fmt(evaluate_vals(model, val, device))
            _log(msg, log_file)
        if time.time() - last_ckpt > 60 * args.checkpoint_minutes and step < steps:
            state.update(step=step, model=model.state_dict(), optimizer=opt.state_dict(),
                         elapsed=state["elapsed"] + time.time() - t_phase)
            t_phase = time.time()
            _save_checkpoint(ckpt_path, state)
            last_ckpt = time.time()
    bar.close()
    state.update(step=step, model=model.state_dict(), optimizer=None,
                 elapsed=state["elapsed"] + time.time() - t_phase)


def _bias_meta(offset, args, previous=None):
    """The manifest's record of :func:`correct_flow_bias` (with the earlier one, if any)."""
    entry = {"pairs": args.bias_pairs, "offset_px": offset, "photo_fraction": args.photo_fraction,
             "first_index": BIAS_INDEX_BASE}
    if previous:
        entry["previous"] = previous
    return entry


def recalibrate_files(args, syn, val, device, log_file):
    """``--recalibrate-only``: the end of each phase again (BN statistics, validation, export)
    on the weights already in ``--out-dir``; the manifest's meta is kept, its metrics updated."""
    q_path, f_path = weights_paths(args.config, args.out_dir)
    for phase, path in (("float", f_path), ("quant", q_path)):
        if not os.path.exists(path):
            continue
        weights, cfg, meta = load_weights(path)
        model = import_weights(LMFlowNet(cfg, phase).to(device), weights)
        before = evaluate_vals(model, val, device)
        recalibrate_bn(model, syn, np.random.default_rng([args.seed, 99, PHASES.index(phase)]), args, device)
        offset = correct_flow_bias(model, syn, args, device)
        after = evaluate_vals(model, val, device)
        metrics = meta.setdefault("metrics", {})
        metrics["val_epe_synthetic"] = round(after["synthetic"], 4)
        metrics["val_epe_photo"] = round(after["photo"], 4)
        meta["bn_recalibrated"] = {"command": "python -m train.train --recalibrate-only",
                                   "val_epe_before": round(before["synthetic"], 4),
                                   "val_epe_photo_before": round(before["photo"], 4),
                                   "crop": list(args.crop), "batches": args.bn_batches,
                                   "photo_fraction": args.photo_fraction}
        if offset is not None:
            meta["flow_bias_corrected"] = _bias_meta(offset, args, previous=meta.get("flow_bias_corrected"))
        save_model(path, model, meta=meta)
        _log(f"{path}: batch norms re-estimated on training batches ({args.crop[0]}x{args.crop[1]}), "
             f"val EPE synthetic "
             f"{before['synthetic']:.3f} -> {after['synthetic']:.3f}, photo {before['photo']:.3f} -> "
             f"{after['photo']:.3f}" + (f"; predict_flow2's bias corrected by {offset} px" if offset else ""),
             log_file)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cfg = load_network_config(args.config)
    syn = SyntheticConfig(height=cfg.height, width=cfg.width)
    os.makedirs(args.work_dir, exist_ok=True)
    os.makedirs(args.out_dir, exist_ok=True)
    ckpt_path = os.path.join(args.work_dir, "checkpoint.pt")
    log_file = os.path.join(args.work_dir, "train.log")
    q_path, f_path = weights_paths(args.config, args.out_dir)
    command = "python -m train.train " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))

    val = load_val(args, cfg)
    if args.recalibrate_only:
        recalibrate_files(args, syn, val, device, log_file)
        return

    torch.manual_seed(args.seed)
    model = LMFlowNet(cfg, "float")
    if os.path.exists(ckpt_path) and not args.restart:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        _log(f"resuming {state['phase']} phase at step {state['step']} from {ckpt_path}", log_file)
    else:
        state = {"phase": "float", "step": 0, "model": None, "optimizer": None, "elapsed": 0.0,
                 "results": {}, "args": vars(args), "init": None}
        if args.init:
            init_weights, _, init_meta = load_weights(args.init, cfg)
            import_weights(model, init_weights)
            state["init"] = {"path": args.init, "meta": init_meta}
        _log(f"new run: {command} (device {device})", log_file)
    pool = PairPool(args.pool_size, args.fresh, syn, crop=tuple(args.crop), photo_fraction=args.photo_fraction)

    while state["phase"] != "done":
        phase = state["phase"]
        run_phase(phase, model, state, pool, val, args, device, log_file, ckpt_path)
        rng = np.random.default_rng([args.seed, 99, PHASES.index(phase)])
        recalibrate_bn(model, syn, rng, args, device)
        offset = correct_flow_bias(model, syn, args, device)
        vals = evaluate_vals(model, val, device)
        steps = state["step"]
        result = {"steps": steps, "samples": steps * args.batch_size,
                  "wall_time_s": round(state["elapsed"], 1), "val_epe": round(vals["synthetic"], 4),
                  "val_epe_photo": round(vals["photo"], 4), "val_pairs": args.val_pairs}
        state["results"][phase] = result
        meta = {"model": phase if phase == "float" else "quantized", "command": command,
                "seed": args.seed, "iterations": steps, "batch_size": args.batch_size,
                "samples": steps * args.batch_size, "wall_time_s": round(state["elapsed"], 1),
                "device": str(device), "torch": torch.__version__,
                "metrics": {"val_epe_synthetic": round(vals["synthetic"], 4),
                            "val_epe_photo": round(vals["photo"], 4), "val_pairs": args.val_pairs},
                "training": {k: v for k, v in vars(args).items() if k not in ("restart", "no_progress")}}
        if offset is not None:
            meta["flow_bias_corrected"] = _bias_meta(offset, args)
        if state.get("init"):
            meta["float_init"] = state["init"]
        if phase == "quant":
            meta["init"] = state.get("quant_init") or "float phase"
            meta["float_phase"] = state["results"]["float"]
        save_model(q_path if phase == "quant" else f_path, model, meta=meta)
        _log(f"{phase} phase done: {steps} steps, {state['elapsed']:.0f} s, {_fmt(vals)}; "
             f"wrote {q_path if phase == 'quant' else f_path}", log_file)
        if phase == "float" and args.quant_init:
            qi_weights, _, qi_meta = load_weights(args.quant_init, cfg)
            import_weights(model, qi_weights)
            state["quant_init"] = {"path": args.quant_init, "meta": qi_meta}
            _log(f"quant phase starts from {args.quant_init}", log_file)
        state.update(phase=PHASES[PHASES.index(phase) + 1], step=0, optimizer=None, elapsed=0.0,
                     model=model.state_dict())
        _save_checkpoint(ckpt_path, state)
    with open(os.path.join(args.work_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(state["results"], f, indent=2)
    _log("training done: " + json.dumps(state["results"]), log_file)


if __name__ == "__main__":
    main()
