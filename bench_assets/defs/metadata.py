"""Asset metadata as a person reads it on the asset page: each figure rounded to the digits that mean something
(`wall_seconds 11.22`, not 11.21632071500062), and still a number, so the UI plots it across materializations.
The marts keep full precision."""

from __future__ import annotations

SIGNIFICANT_DIGITS = 4


def readable(value):
    """A float rounded to SIGNIFICANT_DIGITS significant digits; anything else as it is."""
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return value


def readable_metadata(metadata: dict) -> dict:
    return {name: readable(value) for name, value in metadata.items()}
