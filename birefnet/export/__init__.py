"""Export BiRefNet to ONNX (dynamic batch and size), verify it against PyTorch, quantise it for CPU.

``metadata``: the contract an exported file carries; ``to_onnx``: export, verification and int8
quantisation; ``cache``: the on-disk exports a Predictor with ``runtime='onnx'`` makes of checkpoints.
"""
