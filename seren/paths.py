"""Where seren keeps its state when the user does not say.

Everything lives under one home directory (``SEREN_HOME``, default ``./.seren``) so a demo or
test run is self-contained and removable.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def seren_home() -> Path:
    return Path(os.environ.get("SEREN_HOME", Path.cwd() / ".seren")).resolve()


def models_dir() -> Path:
    return seren_home() / "models"
