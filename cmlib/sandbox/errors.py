"""The API's error answers, in one catalogue: HTTP status, ``Code`` and ``Message``.

The store and the endpoint layer raise :class:`ApiError`; the HTTP layer turns it into the
``{"Code": ..., "Message": ...}`` body Campaign Monitor sends. Keeping status and message next
to the code means one place decides, e.g., that 102 is a 401 while 101 is a 400.
"""
from __future__ import annotations

from typing import Any

# code -> (HTTP status, message)
CATALOGUE: dict[int, tuple[int, str]] = {
    1: (400, "Invalid Email Address"),
    50: (401, "Must supply a valid HTTP Basic Authorization header"),
    100: (401, "Invalid API Key"),
    101: (400, "Invalid ListID"),
    102: (401, "Invalid ClientID"),
    120: (401, "Invalid OAuth Token"),
    203: (400, "Subscriber not in list or has already been removed."),
    204: (400, "Subscriber is in the suppression list"),
    205: (400, "Subscriber is deleted from this list"),
    206: (400, "Subscriber is unsubscribed from this list"),
    207: (400, "Subscriber is bounced from this list"),
    208: (400, "Subscriber is unconfirmed in this list"),
    214: (400, "ConsentToTrack is required. Valid values are Yes, No and Unchanged"),
    215: (400, "Invalid ConsentToTrack value. Valid values are Yes, No and Unchanged"),
    400: (400, "Failed to deserialize your request. Please check the documentation and try again."),
    429: (429, "Rate limit exceeded"),
    500: (500, "Sorry, we've run into a problem"),
    800: (400, "Invalid page number"),
    801: (400, "Invalid page size"),
    802: (400, "Invalid order field"),
    803: (400, "Invalid order direction"),
}

# State of an existing record -> code for an add without Resubscribe.
STATE_CONFLICT_CODE = {"Deleted": 205, "Unsubscribed": 206, "Bounced": 207}


class ApiError(Exception):
    """An error answer the emulated API gives; ``body`` is exactly what goes on the wire."""

    def __init__(self, code: int, message: str | None = None, *, status: int | None = None,
                 result_data: Any = None) -> None:
        default_status, default_message = CATALOGUE.get(code, (400, "Error"))
        self.code = code
        self.status = status if status is not None else default_status
        self.message = message if message is not None else default_message
        self.result_data = result_data
        super().__init__(f"{self.status} Code {code}: {self.message}")

    @property
    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Code": self.code, "Message": self.message}
        if self.result_data is not None:
            out["ResultData"] = self.result_data
        return out
