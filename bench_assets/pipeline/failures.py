"""Failure rows: every item that does not become a prediction becomes one of these, with its stage and reason."""

from __future__ import annotations

# The tagged output of a DoFn that carries failure rows.
FAILED = "failed"

# Where an item can fail, in pipeline order: its line is unusable (not UTF-8, blank, an image path outside the
# allowed roots), it cannot be prepared for the model (decoding, tokenizing), or its inference batch failed.
READ = "read"
PREPROCESS = "preprocess"
INFERENCE = "inference"


def failure_row(key: tuple[int, str], stage: str, error: BaseException | str, traceback: str | None = None) -> dict:
    """A dead-letter row: the item's line number and text (its key through the pipeline), stage and reason.

    Only inference failures carry a traceback (Beam's); read and preprocess reasons say all there is to say.
    """
    line, item = key
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {"line": line, "item_id": item, "stage": stage, "reason": reason, "traceback": traceback}


def _exception_reason(exc_type: type, exc_repr: str, traceback_lines: list[str]) -> str:
    """`Type: message` of the exception Beam caught, from its formatted traceback.

    Beam keeps only the type, repr and formatted traceback, not the exception. The caught exception's traceback
    is the last one (chained exceptions come before it); after its frames, indented, comes the line that states
    it (`module.Type: message`), then any notes.
    """
    headers = [index for index, text in enumerate(traceback_lines) if text == "Traceback (most recent call last):\n"]
    if headers:
        for text in traceback_lines[headers[-1] + 1 :]:
            if not text.startswith(" "):
                _, colon, message = text.rstrip("\n").partition(": ")
                return f"{exc_type.__name__}: {message}" if colon else exc_type.__name__
    return f"{exc_type.__name__}: {exc_repr}"  # an exception group, whose traceback is drawn differently


def inference_failure_rows(failed: tuple) -> list[dict]:
    """One failure row per item of a failed batch.

    Beam's dead-letter output for a failed batch (apache_beam.transforms.core, _ExceptionHandlingWrapperDoFn) is
    (batch of keyed examples, (exception type, repr of the exception, formatted traceback lines)).
    """
    batch, (exc_type, exc_repr, traceback_lines) = failed
    reason = _exception_reason(exc_type, exc_repr, traceback_lines)
    traceback = "".join(traceback_lines)
    return [failure_row(key, INFERENCE, reason, traceback) for key, _ in batch]
