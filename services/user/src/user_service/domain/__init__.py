"""The user entity, its validation, field masks, listing filters and page tokens; no I/O."""
