"""Runtime backends shared by every network (one module per runtime: ``onnxruntime``; TensorRT and
torch backends join here). Importing this package imports no runtime."""
