"""Feast stages: offline sources from a dataset, registry apply, online materialization."""
