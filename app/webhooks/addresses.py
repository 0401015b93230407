"""Where an endpoint URL leads: its host resolved, each address checked (the SSRF guard).

Asked when an endpoint is created and again before every send, because what a name
resolves to can change after it was accepted.
"""

from __future__ import annotations

import asyncio
import socket

from app.errors import BadInput
from app.webhooks import rules


async def check_destination(url: str, *, allow_private: bool) -> None:
    """Refuse (422) a URL that is not http(s), or whose host resolves to an address that is
    not globally routable, unless `allow_private` (HOMING_WEBHOOK_ALLOW_PRIVATE)."""
    host = rules.url_host(url)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, None, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError):
        raise BadInput(f"The host {host!r} does not resolve.", code="unresolvable_host") from None
    addresses = {str(info[4][0]) for info in infos}
    refused = sorted(a for a in addresses if rules.refused_address(a))
    if refused or not addresses:
        raise BadInput(
            f"The host {host!r} resolves to a private or local address ({', '.join(refused)}); "
            "webhooks go to public addresses only.",
            code="private_address",
        )
