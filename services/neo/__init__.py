"""The 14 NEO electrophysiology object types, their array data, labels and selections."""
