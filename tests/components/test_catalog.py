"""The component catalogue: metadata beside every component, every component compiles, README generated."""

from __future__ import annotations

import pytest
import yaml

from components import catalog


@pytest.mark.parametrize("stage", catalog.stages())
def test_every_component_has_valid_metadata_and_compiles(stage: str) -> None:
    meta = catalog.load_metadata(stage)
    assert meta.name == stage
    compiled = catalog.compile_check(stage)
    assert compiled, f"components/{stage} compiled nothing"


def test_readme_table_is_generated_from_the_folders() -> None:
    text = catalog.README.read_text()
    assert text == catalog.expected_readme(), "stale: run python -m components.catalog --write"
    for stage in catalog.stages():
        assert f"| `{stage}` |" in text


def test_metadata_with_an_unknown_key_or_wrong_name_is_refused(tmp_path, monkeypatch) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "component.py").write_text("")
    good = yaml.safe_load((catalog.ROOT / "ingest" / "metadata.yaml").read_text())
    monkeypatch.setattr(catalog, "ROOT", tmp_path)
    (tmp_path / "x" / "metadata.yaml").write_text(yaml.safe_dump({**good, "name": "x", "stabilty": "beta"}))
    with pytest.raises(catalog.CatalogError, match="x/metadata.yaml is invalid"):
        catalog.load_metadata("x")
    (tmp_path / "x" / "metadata.yaml").write_text(yaml.safe_dump(good))
    with pytest.raises(catalog.CatalogError, match="Fix: set name: x"):
        catalog.load_metadata("x")
    (tmp_path / "x" / "metadata.yaml").unlink()
    with pytest.raises(catalog.CatalogError, match="has no metadata.yaml"):
        catalog.load_metadata("x")
