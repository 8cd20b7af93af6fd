"""``errors.describe``: the one wording of "the reason of an exception"."""
from __future__ import annotations

import pytest

from cmlib.errors import NotInListError, ServerError, TransportError, describe


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (NotInListError("Subscriber not in list", status=400, code=203, endpoint="DELETE subscribers/L1"),
         "Code 203: Subscriber not in list"),
        (ServerError("Bad Gateway", status=502, endpoint="GET subscribers/L1"), "HTTP 502: Bad Gateway"),
        (TransportError("connection refused"), "connection refused"),
        (ValueError("bad row"), "ValueError: bad row"),
        (KeyError("Email"), "KeyError: 'Email'"),
        (RuntimeError(), "RuntimeError"),
    ],
)
def test_describe_names_the_reason_without_the_endpoint(exc: BaseException, expected: str) -> None:
    assert describe(exc) == expected
