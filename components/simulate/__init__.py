"""See component.py."""
