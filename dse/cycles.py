"""Cycles of a frame on an engine configuration: the exact cycle model (:mod:`models.cycles`) over
the descriptors the host compiles (:func:`sw.program.compile_program`), as ``make bench``
measures them on the RTL (one ``TOTAL_CYCLES`` per accelerator segment, summed)."""

from importlib import metadata

from models import QuantizedModel, load_network_config, random_weights
from models.cycles import list_cycles
from sw.program import HostLayer, compile_program

__all__ = ["frame_cycles", "board_frame_model", "BOARD_FRAME_GROUP"]

_MODELS = {}
#: Entry-point group of a board frame model (see :func:`board_frame_model`).
BOARD_FRAME_GROUP = "lmflow.board_frame_models"


def _model(network):
    if network not in _MODELS:
        net = load_network_config(network)
        _MODELS[network] = QuantizedModel(net, random_weights(net, seed=0))
    return _MODELS[network]


def frame_cycles(params, network, latency=8):
    """Accelerator cycles of one frame of ``network`` on ``params``.

    Returns
    -------
    dict
        ``cycles`` (total), ``macs``, ``utilization`` (useful MACs / (P*S*cycles)),
        ``layers`` (name -> ``{"cycles", "macs", "utilization"}``), ``program`` (the compiled
        program, for a board frame model).

    Raises
    ------
    models.errors.ConfigError
        If the network does not run on this engine (the message names the layer).
    """
    model = _model(network)
    prog = compile_program(model, params)
    per_mac = params.pe_count * params.simd_lanes
    layers, total = {}, 0
    for item in prog.schedule:
        if isinstance(item, HostLayer):
            continue
        descs = [prog.descriptors[name] for name in item.layers]
        seg_total, each = list_cycles(descs, params, latency=latency)
        total += seg_total
        for name, cycles in zip(item.layers, each):
            macs = model.plans[name].layer.macs
            layers[name] = {"cycles": cycles, "macs": macs, "utilization": round(macs / (per_mac * cycles), 4)}
    macs = sum(v["macs"] for v in layers.values())
    return {"cycles": total, "macs": macs, "utilization": round(macs / (per_mac * total), 4), "layers": layers,
            "program": prog}


def board_frame_model():
    """The board frame model, if one is installed: the first entry point of the group
    :data:`BOARD_FRAME_GROUP`, a callable ``(hw_config, network_name, program, cycles) ->
    milliseconds`` (the whole frame on the DE10-Nano: ARM layers, transfers and the
    accelerator). ``None`` when there is none: the sweep then leaves ``board_frame_ms`` empty."""
    for ep in metadata.entry_points(group=BOARD_FRAME_GROUP):
        return ep.load()
    return None
