"""specc: a declarative deep-learning model-spec compiler (YAML -> PyTorch -> ONNX)."""

__version__ = "0.1.0"
