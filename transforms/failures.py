"""The dead-letter output every stage shares.

A stage catches the errors that belong to its input (``INPUT_ERRORS``), turns each
into a ``FailedRecord`` on the ``failed`` output and goes on; programming errors raise.
"""
import zipfile

from apache_beam import pvalue
from apache_beam.metrics import Metrics

from schemas.records import FailedRecord

FAILED = 'failed'


class InputError(ValueError):
    """Bad input: a broken, hostile or unusable file. Carries no traceback to the log."""


# What bad input raises: our own checks, broken zips, I/O on the input, decoders' ValueErrors.
INPUT_ERRORS = (InputError, ValueError, zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError)


def failure(stage: str, input_path: str, error: Exception, song_id=None) -> pvalue.TaggedOutput:
    """Counts the failure and wraps it for the ``failed`` output."""
    Metrics.counter('errors', stage).inc()
    message = str(error) or repr(error)
    return pvalue.TaggedOutput(FAILED, FailedRecord(
        stage=stage, input=input_path, error_type=type(error).__name__, message=message, song_id=song_id))
