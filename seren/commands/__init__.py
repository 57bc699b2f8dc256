"""CLI command modules, discovered by seren.cli (one module per command group)."""
