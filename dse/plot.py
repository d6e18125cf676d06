"""The sweep's Pareto plot: frame time against ALMs (``build/dse/pareto.png``)."""

import os

from models.board import DEVICE

__all__ = ["pareto_plot"]


def pareto_plot(records, sweep, best, path):
    """Frame time of the sweep's first network against the ALM estimate, every point; the
    Pareto front of the candidates, the device's ALM limit, the default design and the best
    point per budget marked. Written to a temporary file, then renamed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .run import candidate, pareto_front

    from .sweep import network_label
    net = network_label(sweep.networks[0])
    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    groups = {"candidate (fits, timing, board bus)": [], "candidate, other bus width (no board top)": [],
              "over the timing rule": [], "does not fit the device": []}
    for r in records:
        e = r["networks"].get(net, {})
        if e.get("frame_ms") is None:
            continue
        if not r["fits_device"]:
            groups["does not fit the device"].append(r)
        elif not r["timing_ok"]:
            groups["over the timing rule"].append(r)
        elif r["board_target"] == "ok":
            groups["candidate (fits, timing, board bus)"].append(r)
        else:
            groups["candidate, other bus width (no board top)"].append(r)
    styles = {"candidate (fits, timing, board bus)": dict(color="tab:blue", marker="o"),
              "candidate, other bus width (no board top)": dict(color="tab:cyan", marker="s"),
              "over the timing rule": dict(color="tab:orange", marker="^"),
              "does not fit the device": dict(color="tab:gray", marker="x")}
    for label, rs in groups.items():
        if rs:
            ax.scatter([r["alm_estimate"] for r in rs], [r["networks"][net]["frame_ms"] for r in rs], s=22,
                       alpha=0.75, label=label, **styles[label])
    front = pareto_front(records, net)
    if front:
        ax.step([r["alm_estimate"] for r in front], [r["networks"][net]["frame_ms"] for r in front], where="post",
                color="tab:blue", linewidth=1, alpha=0.6, label="Pareto front (candidates)")
    ax.axvline(DEVICE["alms"], color="tab:red", linestyle="--", linewidth=1.2,
               label=f"5CSEBA6: {DEVICE['alms']:,} ALMs")
    for r in records:
        if r.get("default") and r["networks"].get(net, {}).get("frame_ms") is not None:
            ax.scatter([r["alm_estimate"]], [r["networks"][net]["frame_ms"]], s=160, facecolors="none",
                       edgecolors="black", linewidths=1.8, label=f"default design ({r['name']})", zorder=5)
    winners = {}
    for budget, r in best.items():
        if r is not None:
            winners.setdefault(r["name"], (r, []))[1].append(budget)
    first = True
    for r, budgets in winners.values():
        x, y = r["alm_estimate"], r["networks"][net]["frame_ms"]
        ax.scatter([x], [y], marker="*", s=200, color="gold", edgecolors="black", zorder=6,
                   label="best per ALM budget" if first else None)
        ax.annotate(f"<= {', '.join(f'{b:,}' for b in budgets)} ALMs: {r['pe_count']}x{r['simd_lanes']}, "
                    f"{r['frame_ms'] if 'frame_ms' in r else y:.2f} ms", (x, y), textcoords="offset points",
                    xytext=(8, 6), fontsize=7)
        first = False
    ax.set_xlabel("ALM estimate (resource model)")
    ax.set_ylabel(f"accelerator frame time, ms ({net})")
    ax.set_yscale("log")
    ax.set_title(f"Design space: {len(records)} points ({os.path.basename(sweep.path)})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    tmp = f"{path}.{os.getpid()}.tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
