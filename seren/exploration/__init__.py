"""LLM interest exploration (RecSys'24) + feedback alignment (2025 follow-up).

clusters (items -> described interest clusters) -> transitions (novel next-cluster triples) ->
novelty (LoRA LLM, constrained decoding) -> alignment (best-of-n by feedback) -> pair_table (all
N^2 pairs, Feast) ; workflow runs the stages and serves one user (`seren explore`).
Modules are imported directly (e.g. `from seren.exploration.clusters import build_clusters`) so
importing the package stays cheap.
"""
