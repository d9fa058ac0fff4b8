# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    # The renewal policy, one definition for every module that decides or
    # reports when a certificate renews (module_utils/_policy.renewal_time).
    DOCUMENTATION = r"""
options:
  renew_fraction:
    description:
      - Renew once this fraction of the lifetime has passed, in (0, 1]. Default two thirds.
      - Ignored with O(renew_days_before).
    type: float
  renew_days_before:
    description: Renew this many days before expiry instead of after a fraction of the lifetime.
    type: float
  renew_jitter:
    description:
      - Move the renewal point earlier by up to this fraction of the lifetime, in [0, 1), by a stable amount drawn
        from the certificate's jitter seed, so a fleet issued at once does not renew at once.
      - The same policy and seed give the same point in M(fleet.mtls.certificate_info),
        M(fleet.mtls.certificate_request) and M(fleet.mtls.metrics).
    type: float
    default: 0.0
"""
