"""Thin KFP components, one folder per stage: `components/<stage>/component.py`.

Conventions (kubeflow/pipelines-components style):
* `@dsl.component(base_image=SEREN_IMAGE)` — the project image built from the root Dockerfile;
  never `target_image` (kfp.local cannot run those without Docker) and no packages_to_install.
* Imports inside the function body (KFP serialises the function source).
* Typed artifacts in and out (Input[Dataset], Output[Model], Output[Metrics], ...); the body reads
  artifacts, calls one `seren.*`/`serving.*`/`monitoring.*` function, writes artifacts + metrics.
* Each component has a unit test (call `component.python_func` directly) and a local test
  (`kfp.local` with SubprocessRunner(use_venv=False), fixture `kfp_local` in tests/conftest.py).
"""

import os

from seren import __version__

# Override with your registry's image (set at compile time): SEREN_IMAGE=registry/seren:tag
SEREN_IMAGE = os.environ.get("SEREN_IMAGE", f"ghcr.io/seren-ml/seren:{__version__}")
