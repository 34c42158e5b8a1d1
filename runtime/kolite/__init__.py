"""kolite: torch-free runtime for Korean text classifiers exported to ONNX."""
