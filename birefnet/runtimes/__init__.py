"""Where a Predictor's model runs: eager/compiled PyTorch, ONNX Runtime (CPU or CUDA), or TensorRT.

Every runtime takes the same normalised float32 NCHW tensor on the predictor's device and returns
float32 logits on that device, so pre- and post-processing are shared (``birefnet.predictor``).
``select.open_runtime`` picks and builds one for a model source.
"""

RUNTIMES = ("auto", "torch", "onnx", "tensorrt")
