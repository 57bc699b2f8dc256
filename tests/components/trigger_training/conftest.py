"""`fake_kfp`, the Kubeflow API stand-in of tests/pipelines (loaded from there, so there is one fake)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PIPELINES_CONFTEST = Path(__file__).resolve().parents[2] / "pipelines" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_seren_fake_kfp_for_trigger", _PIPELINES_CONFTEST)
_fake = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(_fake)
fake_kfp = _fake.fake_kfp
