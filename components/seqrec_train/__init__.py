"""Sequence recommender: positive engagement sequences -> SASRec-style model (restricted at query time)."""
