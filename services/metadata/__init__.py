"""The metadata service: odML sections, properties and values (seed 001, METADATA MANAGEMENT)."""
