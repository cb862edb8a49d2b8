"""overcooked environments."""
