"""Training of LMFlowNet (PyTorch, optional extra ``.[train]``).

* :mod:`train.model`: the network of :mod:`models.network` in PyTorch, float or quantization-aware
  (straight-through estimators for the 2-bit activations and the channel-wise binary weights);
* :mod:`train.losses`: the multi-scale end-point-error loss of FlowNet;
* :mod:`train.data`: batches from the synthetic generator (:mod:`models.synthetic`) with the
  photometric and flip augmentations;
* :mod:`train.export`: torch model <-> the project's ``.npz`` weights format;
* :mod:`train.train` (``python -m train.train``): the resumable training loop;
* :mod:`train.eval` (``python -m train.eval``): average EPE of the float and quantized models and of
  OpenCV's Farneback and DIS.
"""
