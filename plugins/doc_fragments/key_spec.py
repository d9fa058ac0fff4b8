# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    # The key a module makes: one definition of the types, their sizes and the
    # default size (module_utils/_params: the key_spec group, KEY_SIZES,
    # new_key_size()). A module may add to an option here in its own options
    # (private_key its aliases, ca its own default sizes); the entries of
    # certificate_request take the same two as suboptions.
    DOCUMENTATION = r"""
options:
  key_type:
    description:
      - Key algorithm. V(ec) takes the sizes V(256) (P-256) and V(384) (P-384), V(rsa) V(2048), V(3072) and V(4096)
        bits, V(ed25519) no size.
    type: str
    choices: [ec, rsa, ed25519]
    default: ec
  key_size:
    description:
      - Key size in bits (for V(ec) the curve's), one that O(key_type) takes; any other is refused before anything
        is read or written.
      - Unset, V(256) for V(ec) and V(3072) for V(rsa). Leave it unset for V(ed25519).
    type: int
"""
