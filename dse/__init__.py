"""Design-space exploration of the accelerator (``make dse``, ``make dse-model``).

A sweep file (:mod:`dse.sweep`, ``dse/sweeps/default.yaml``) lists the array and engine
parameters to vary; every point gets its cycles per frame and per layer from the exact cycle
model over the host's descriptors (:mod:`dse.cycles`), its LUTs, FFs, M10K, ALM estimate and
logic levels from a resource model built from component syntheses (:mod:`dse.resources`), and
whether it fits the 5CSEBA6; :mod:`dse.run` writes ``build/dse/points.{csv,json}`` and the
Pareto plot (:mod:`dse.plot`). See docs/simulation.md.
"""
