"""The one rule for "which address is this client": REMOTE_ADDR unless proxies are configured.

`X-Forwarded-For` is written by whoever sends the request, so it is believed only for the
`LEPTON_NUM_PROXIES` hops that the operator's own proxies appended (counted from the right).
DRF's throttles apply that rule through `NUM_PROXIES`; the login lockout (django-axes) and
anything else that needs the client's address calls this function, so both agree.
"""

from rest_framework.throttling import BaseThrottle


def client_address(request) -> str:
    """The client's address under the configured proxy rule (DRF's `get_ident`, one implementation)."""
    return BaseThrottle().get_ident(request)
