"""Helpers shared by the export/validate/register/deploy component tests (plain functions, no fixtures)."""

from pathlib import Path

import numpy as np
import pandas as pd


def tiny_onnx(tiny_model_dir: Path) -> Path:
    """The tiny model's scorer export, written once per session beside the session's tiny model."""
    from serving.export import export_onnx

    out = tiny_model_dir.parent / "tiny-scorer.onnx"
    return out if out.is_file() else export_onnx(tiny_model_dir, out)


def onnx_dir(tiny_model_dir: Path, dest: Path) -> Path:
    """An export step's output directory (model.onnx inside), as the export component writes it."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(tiny_onnx(tiny_model_dir), dest / "model.onnx")
    return dest


def training_data(
    out: Path, n_users: int = 6, seed: int = 0, users: list[str] | None = None, items: list[str] | None = None
) -> Path:
    """A training-data dir whose held-out eval candidates have both labels (what validate reads).
    users/items: real ids (e.g. of the small synthetic dataset) instead of u0../i0..."""
    from seren.serengpt.labeling import TABLES, TrainingData

    rng = np.random.default_rng(seed)
    cats = ["Jazz", "Poetry", "Rock", "Baking"]
    rows = [
        {
            "user_id": users[u] if users else f"u{u}",
            "item_id": items[k] if items else f"i{k}",
            "profile_text": f"Top interests: {cats[u % 4]} and {cats[(u + 1) % 4]}.",
            "item_text": f"Item {k}\nCategory: {cats[k % 4]}",
            "label": int(rng.integers(0, 2)) if k > 1 else k,
            "source": "behaviour",
            "as_of": pd.Timestamp("2024-01-01", tz="UTC"),
            "relation_fields": "",  # no structured fields: the relation line falls back to the profile text
        }
        for u in range(n_users)
        for k in range(4)
    ]
    tables = {name: pd.DataFrame(columns=cols) for name, cols in TABLES.items()}
    tables["eval_candidates"] = pd.DataFrame(rows)[TABLES["eval_candidates"]]
    return TrainingData(**tables).save(out)
