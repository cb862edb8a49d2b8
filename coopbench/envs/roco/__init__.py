"""roco environments."""
