"""kolite_bench: accuracy and speed of every variant against the PyTorch originals and peers."""
