"""Starbox: an astronomy science platform in one box."""

__version__ = "0.1.0"
