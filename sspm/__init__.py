"""SSPM: self-service password management in front of a directory (see docs/architecture.md)."""
