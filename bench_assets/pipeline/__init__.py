"""Pieces every benchmark pipeline shares, one module each: numbered input lines, failure rows, batch timing,
prediction rows, JSON-lines outputs, progress, Beam's metrics, model handlers, and the runners."""
