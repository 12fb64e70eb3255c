"""Errors about the services tillflow runs on: each names the service and says what to do.

The launchers raise them when a service cannot be set up or started; the API, the flows
and the jobs when one they need does not answer.

Addresses are shown without the credentials a URL may carry:

>>> str(ServiceUnavailable("Redis", "redis://:pw@cache:6379/0", "timeout"))
'Redis is not reachable at redis://***@cache:6379/0: timeout'
"""

from infra.redact import redact


class StackError(RuntimeError):
    """A service of the local stack could not be set up, started or reached."""


class ServiceUnavailable(StackError):
    """A service that tillflow needs does not answer."""

    def __init__(self, service: str, address: str, hint: str) -> None:
        address = redact(address)
        super().__init__(redact(f"{service} is not reachable at {address}: {hint}"))
        self.service = service
        self.address = address
