"""Python-backend model code deployed into the Triton model repository.

These modules run inside Triton's python-backend stub, in `.venv-triton` (numpy<2, `tokenizers`,
`onnxruntime`; no torch, transformers or seren). Their pure parts are importable from the main
venv too, so tests compare them directly with the in-process scorer.
"""
