"""kolite_export: PyTorch checkpoint -> validated, optimized, quantized ONNX artifact."""
