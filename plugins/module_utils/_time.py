# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Times as every result carries them: UTC, ISO 8601 with a Z, to the second.

Standard library only, so that a module that reads no key or certificate
(adoption_info) runs where cryptography is missing.
"""

from __future__ import annotations

import datetime

from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

UTC = datetime.timezone.utc


def utcnow():
    return datetime.datetime.now(UTC)


def as_utc(value):
    """A naive datetime means UTC (as cryptography < 42 returns them); an aware one is converted."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def isoformat(value):
    """ISO 8601 in UTC with a Z, to the second: what every result carries."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_isoformat(text):
    """Read back what isoformat() wrote (and plain ISO 8601 with an offset)."""
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise PkiError("%r is not an ISO 8601 date and time" % (text,))
    return as_utc(value)
