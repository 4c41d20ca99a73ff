"""Stream processing: pure processors over mutable mappings, and the runtimes that drive them."""
