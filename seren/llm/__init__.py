"""Base models, prompts, the P(Yes) scorer and text backends shared by SerenGPT and exploration."""
