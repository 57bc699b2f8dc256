"""Serving: ONNX/TensorRT export, parity validation, the Triton model repository, the local
Triton launcher and the client. See ARCHITECTURE.md ("serving")."""
