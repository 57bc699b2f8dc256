"""seren's Feast feature repo. The only package that imports Feast.

* ``targets/*.yaml``  feature_store.yaml per target (local SQLite, Redis, GCP), rendered into
  the data dir by ``config`` (no Feast import: the CLI checks input before paying for Feast)
* ``schema``          view schemas, entities, push sources (no Feast import)
* ``definitions``     the Feast objects built from the schema for a target
* ``store``           the API: get_store, write_offline, apply, materialize, get_online,
  get_historical, push, teardown
"""
