"""SerenGPT (SERAL stage 2): labeling/enrichment, SFT distillation, preference alignment, evaluation.

Submodules are imported explicitly (`seren.serengpt.labeling`, `.sft`, `.align`, `.evaluate`) so
that importing one stage does not pull in the training stack of the others.
"""
