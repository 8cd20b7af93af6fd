"""The browser tab's icon, served from the page itself.

A ``:material/…:`` page icon makes every browser fetch the icon from fonts.gstatic.com on every
page load: an internal tool telling a third party who opens it and when, and a failed request
on a network without internet access. An image file would be served from Streamlit's media
store, which lives in one replica's memory, so behind a load balancer another replica answers
404. A ``data:`` URL (1.8 KB, a 32 px PNG in the theme's colour) needs neither: Streamlit passes
it to the frontend as it is.
"""
from __future__ import annotations

import base64
from pathlib import Path

ICON_FILE = Path(__file__).parent / "assets" / "favicon.png"
DATA_URL = "data:image/png;base64," + base64.b64encode(ICON_FILE.read_bytes()).decode("ascii")
