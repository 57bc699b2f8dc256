"""The nearline pipeline: one recurring refresh of changed users' profiles and candidates."""
