"""The monitoring pipeline: judgment drift -> (drift) -> retraining trigger."""
