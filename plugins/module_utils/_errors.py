# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error type of the PKI core.

Everything the core refuses (bad input, a policy violation, a file it cannot
use) is raised as PkiError with a message meant for the person running the
play; modules turn it into ``fail_json(msg=...)`` and nothing else.
"""

from __future__ import annotations


class PkiError(Exception):
    """A refusal with a message that names what is wrong and where."""
