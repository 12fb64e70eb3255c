"""Errors the launchers raise: each names the service and says what to do."""


class StackError(RuntimeError):
    """A service of the local stack could not be set up, started or reached."""


class ServiceUnavailable(StackError):
    """A service that tillflow needs does not answer."""

    def __init__(self, service: str, address: str, hint: str) -> None:
        super().__init__(f"{service} is not reachable at {address}: {hint}")
        self.service = service
        self.address = address
