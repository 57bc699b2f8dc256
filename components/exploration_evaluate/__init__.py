"""Exploration report: novelty gates vs baselines, alignment gain, table quality."""
