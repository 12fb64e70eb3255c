"""Keep credentials out of what tillflow says: user and password inside URLs are masked.

>>> redact("Redis is not reachable at redis://app:s3cret@cache:6379/0: timeout")
'Redis is not reachable at redis://***@cache:6379/0: timeout'
>>> redact("bolt://neo4j:7687 and SASL_SSL://user:pw@broker:9093,b2:9093")
'bolt://neo4j:7687 and SASL_SSL://***@broker:9093,b2:9093'
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-_]*://)[^/@\s]+@")


def redact(text: str) -> str:
    """``text`` with every ``scheme://user:password@`` reduced to ``scheme://***@``."""
    return _USERINFO.sub(r"\g<scheme>***@", text) if "@" in text else text
