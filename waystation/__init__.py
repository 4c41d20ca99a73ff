"""waystation: live coverage and alerts for networks of rest stations for outdoor workers."""

__version__ = "0.1.0"
