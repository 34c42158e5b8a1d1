"""Issue 23 item 4: a native onnxruntime custom-op library that fuses ``Gelu → QuantizeLinear`` in kolite's
int8-static graph, built and measured as an experiment (never on the runtime's default path).

- ``fused_ops.cc``: the kernel, bitwise equal to onnxruntime 1.31's CPU Gelu + QuantizeLinear.
- ``build``: compiles it with the system C++ compiler into a cached ``.so``.
- ``rewrite``: writes a second graph where each matching chain is one ``kolite.native`` node.
- ``ab``: bitwise equality and thread-CPU A/B of the fused graph against the unfused one.
"""

# Nothing is imported here, so ``python -m kolite_bench.native_fusion.<module>`` runs each module cleanly.
