"""Loading model versions for inference: safe formats, signatures and input checks.

Importing this package is cheap; numpy, scikit-learn, skops and onnxruntime are imported
by the modules that need them (``predictor``, ``inputs``), when a version is loaded.
"""
