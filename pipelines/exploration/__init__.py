"""The exploration pipeline: clusters -> transitions -> novelty fine-tune -> feedback alignment -> pair table -> evaluate."""
