"""The features pipeline: ingest + validate -> offline sources -> feast apply -> materialize."""
