"""Wire and API message models. Imports nothing of the project: everything else builds on it."""

SCHEMA_VERSION = 1
