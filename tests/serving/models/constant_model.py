"""A python-backend model for client error tests: returns SCORE filled with 0.5 of the configured width.

With width 2 it is a model whose response does not match the SerenGPT interface ([batch, 1]).
"""

import json

import numpy as np


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        self.width = int(cfg["parameters"]["width"]["string_value"])

    def execute(self, requests):
        import triton_python_backend_utils as pb_utils

        out = []
        for r in requests:
            n = pb_utils.get_input_tensor_by_name(r, "ITEM_TEXT").as_numpy().shape[0]
            score = np.full((n, self.width), 0.5, dtype=np.float32)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("SCORE", score)]))
        return out
