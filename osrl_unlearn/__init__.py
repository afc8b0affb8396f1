"""osrl-unlearn: repair offline safe RL policies trained on poisoned data."""

__version__ = "0.1.0"
