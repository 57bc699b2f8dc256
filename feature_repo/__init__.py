"""seren's Feast feature repo: targets (``targets/*.yaml``), definitions, and the store API.

The only package that imports Feast. Use ``feature_repo.store`` (get_store, write_offline,
apply, materialize, get_online, get_historical, push, teardown).
"""
