"""LoRA SFT of the novelty LLM on transition prompts."""
