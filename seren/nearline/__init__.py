"""SERAL stage 3, nearline adaptation: changed users since the watermark -> fresh profiles ->
candidates (main + exploration slates) -> SerenGPT on Triton -> Feast (online + offline)."""

from seren.nearline.run import (
    NearlineConfig,
    build_candidates,
    changed_users,
    open_store,
    run_loop,
    run_nearline,
    select_top,
)
from seren.nearline.state import WatermarkStore, nearline_dir

__all__ = [
    "NearlineConfig",
    "WatermarkStore",
    "build_candidates",
    "changed_users",
    "nearline_dir",
    "open_store",
    "run_loop",
    "run_nearline",
    "select_top",
]
