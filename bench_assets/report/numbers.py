"""How the report writes a figure: a few significant digits, a dash for none."""

from __future__ import annotations


def number(value: float | None) -> str:
    return "–" if value is None else f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


def percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def percent_text(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f}%"


def utilization_text(run: dict) -> str:
    """A run's share of the measured peak, or that it went above the measured ceiling (no share over 100%)."""
    return "above measured peak" if run["is_above_measured_peak"] else percent_text(run["utilization"])


def times(value: float | None) -> str:
    return "–" if value is None else number(value) + "x"
