"""Novel cluster transitions (c1, c2) -> c_next: the novelty LLM's fine-tuning and test data."""
