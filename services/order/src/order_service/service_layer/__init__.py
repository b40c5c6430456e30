"""Use cases: create, cancel, apply payment results, saga timeout."""
