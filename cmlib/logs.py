"""Logging for the command-line tools.

Retries are normal (that is the point of them), so the CLIs log them only with ``-v``;
without any handler Python would print each WARNING to stderr, over a progress line.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cli_logging(verbose: bool) -> Iterator[None]:
    handler: logging.Handler = logging.StreamHandler(sys.stderr) if verbose else logging.NullHandler()
    logger = logging.getLogger("cmlib")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
