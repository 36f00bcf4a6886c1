"""audit layer (see docs/design.md)."""
