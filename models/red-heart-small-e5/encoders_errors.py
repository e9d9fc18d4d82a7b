"""The two ways an encoder entry can fail: it cannot be loaded, or what loaded does not match its entry."""

from __future__ import annotations


class EncoderLoadError(OSError):
    """An encoder's model or tokenizer could not be loaded (names the encoder and the path)."""


class EncoderConfigError(ValueError):
    """A loaded encoder does not match its config entry (e.g. its hidden size)."""
