"""seren: LLM-powered serendipity and interest exploration."""

__version__ = "0.1.0"
