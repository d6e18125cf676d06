"""The host layer: float layers, packing, the accelerator driver and its backends, the CLI.

``transport`` (the abstract device access), ``driver`` (the accelerator over any transport),
``program`` (compiling a model for the engine), ``runtime`` (frames in, flow out), ``backends``
(golden, rtl, de10nano), ``config`` (the engine configuration), ``cli`` (``lmflow``), ``bench``.
See docs/host.md.
"""
