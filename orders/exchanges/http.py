"""HTTP sessions for venue requests: waiting for the answer gives the order thread's turn away.

In embedded mode an order runs on a :class:`orders.handoff.LocalPool` thread, and only a few of
those run at once; one waiting for its venue's answer lets another order run meanwhile
(:func:`orders.handoff.venue_wait`), so many accounts' requests can be out at the same time.
Every venue's requests go through a session made (or fitted) here: KIS's and Kiwoom's clients
and each ccxt client.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

from orders.handoff import venue_wait


class VenueWaitAdapter(HTTPAdapter):
    """requests' transport, inside a venue wait from sending to the last byte of the answer."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        with venue_wait():
            response = super().send(request, *args, **kwargs)
            if not kwargs.get("stream"):
                response.content  # noqa: B018 - read the body here, not after the wait
            return response


def venue_session(session: requests.Session | None = None) -> requests.Session:
    """``session`` (a new one when not given) sending through :class:`VenueWaitAdapter`."""
    session = session if session is not None else requests.Session()
    adapter = VenueWaitAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
