# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # A module extends one of WRITES and READS, and one of CRYPTOGRAPHY and PYTHON: Ansible merges their attributes.

    # For modules that write files: full check mode and diff.
    WRITES = r"""
attributes:
  check_mode:
    support: full
    description: Nothing is written; C(changed) and the diff tell what would be.
  diff_mode:
    support: full
    description: Shows the files that change. Private keys are shown as a placeholder, never their content.
"""

    # For modules that only read.
    READS = r"""
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs unchanged in check mode.
  diff_mode:
    support: none
    description: Nothing is written, so there is no diff.
"""

    # For modules that read or make keys, requests, certificates or CRLs.
    CRYPTOGRAPHY = r"""
attributes:
  platform:
    support: full
    platforms: posix
    description: Runs on POSIX hosts with Python and the C(cryptography) library (38.0 or newer).
"""

    # For modules that read none of those.
    PYTHON = r"""
attributes:
  platform:
    support: full
    platforms: posix
    description: Runs on POSIX hosts with Python alone; it needs no C(cryptography) library.
"""
