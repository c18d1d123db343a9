"""Box-regressor backends (one module per model family and runtime); see ``regression/regressor.py``.

Each backend imports its runtime (torch, ONNX Runtime, TensorRT) inside its own module, so importing
this package costs nothing.
"""
