"""The watermark store (local file and gs:// on the GCS emulator) and the one-run-at-a-time lock."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from seren.errors import DataError, SerenError
from seren.nearline import NearlineConfig, WatermarkStore, nearline_dir, run_nearline
from seren.nearline.run import changed_users, select_top


def _roundtrip(st: WatermarkStore) -> None:
    assert st.read() is None and st.watermark() is None
    t1 = pd.Timestamp("2024-02-01 10:00:00", tz="UTC")
    st.write(t1, users_refreshed=3)
    assert st.watermark() == t1 and st.read()["users_refreshed"] == 3
    st.write(t1 + pd.Timedelta(hours=1))
    assert st.watermark() == t1 + pd.Timedelta(hours=1)


def test_local_watermark_roundtrip_and_corrupt_file(tmp_path: Path) -> None:
    st = WatermarkStore(nearline_dir(tmp_path / "features"))
    _roundtrip(st)
    assert Path(st.uri) == tmp_path / "features" / "nearline" / "watermark.json"
    assert not [p for p in Path(st.uri).parent.iterdir() if p.name.startswith(".") and "tmp" in p.name]
    Path(st.uri).write_text("{not json")
    with pytest.raises(DataError, match="unreadable") as err:
        st.read()
    assert "\n" not in err.value.line() and "Fix:" in err.value.line()


def test_gs_watermark_roundtrip_on_the_emulator(gs_uri: str) -> None:
    st = WatermarkStore(gs_uri)
    assert st.uri == f"{gs_uri}/watermark.json"
    _roundtrip(st)


def test_bad_gs_uri_is_a_config_error() -> None:
    with pytest.raises(SerenError, match="invalid GCS URI"):
        WatermarkStore("gs://Not_A_Bucket!")


def test_a_second_concurrent_run_is_refused(small_dataset, exploration_dir, tiny_model_dir, tmp_path) -> None:
    feast = tmp_path / "features"
    cfg = NearlineConfig(
        dataset_dir=str(small_dataset),
        triton_url="127.0.0.1:1",
        exploration_dir=str(exploration_dir),
        model=str(tiny_model_dir),
        feast_data_dir=str(feast),
        feast_target="local",
    )
    st = WatermarkStore(nearline_dir(feast))
    with st.run_lock(nearline_dir(feast)), pytest.raises(SerenError, match="locked by another process") as err:
        run_nearline(cfg)
    assert "\n" not in err.value.line()
    assert st.read() is None


def test_changed_users_and_window_end() -> None:
    t = pd.Timestamp("2024-01-01", tz="UTC")
    inter = pd.DataFrame(
        {"user_id": ["a", "b", "a", "c"], "timestamp": [t, t + pd.Timedelta(1, "h"), t + pd.Timedelta(2, "h"), t]}
    )
    assert changed_users(inter, None) == (["a", "b", "c"], t + pd.Timedelta(2, "h"))
    assert changed_users(inter, t) == (["a", "b"], t + pd.Timedelta(2, "h"))
    assert changed_users(inter, t + pd.Timedelta(2, "h"))[0] == []  # the watermark's own events are done
    assert changed_users(inter.iloc[:0], None) == ([], None)


def test_select_top_keeps_the_best_above_threshold_in_order() -> None:
    scored = pd.DataFrame(
        {
            "user_id": ["u"] * 5 + ["v"] * 2,
            "item_id": ["i1", "i2", "i3", "i4", "i5", "j1", "j2"],
            "score": [0.2, 0.9, 0.6, 0.9, 0.4, 0.1, 0.3],
        }
    )
    top = select_top(scored, top_n=3, threshold=0.5)
    assert top.loc["u", "candidate_item_ids"] == ["i2", "i4", "i3"]  # ties by item id
    assert top.loc["u", "candidate_scores"] == pytest.approx([0.9, 0.9, 0.6])
    assert "v" not in top.index  # nothing above the threshold
