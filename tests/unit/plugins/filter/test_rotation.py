# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotation filters: what a host renewed, what its services must serve, and the run's summary."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fleet.mtls.plugins.filter.rotation import (
    rotation_expected_serials, rotation_renewed, rotation_summary)

REQUESTED = [
    {"name": "server", "reasons": ["renewal window"], "serial": "0A"},
    {"name": "client", "reasons": [], "serial": "0B"},
    {"name": "backend", "reasons": ["forced"], "serial": "0C"},
]


def test_renewed_lists_only_certificates_with_a_reason_and_their_new_serial():
    installed = [{"name": "server", "serial": "1A", "changed": True}, {"name": "backend", "serial": "1C", "changed": True}]
    assert rotation_renewed(REQUESTED, installed) == [
        {"name": "server", "reasons": ["renewal window"], "previous_serial": "0A", "serial": "1A"},
        {"name": "backend", "reasons": ["forced"], "previous_serial": "0C", "serial": "1C"},
    ]


def test_renewed_in_check_mode_has_no_new_serial():
    assert [cert["serial"] for cert in rotation_renewed(REQUESTED, None)] == [None, None]
    assert rotation_renewed([{"name": "server", "reasons": [], "serial": "0A"}], []) == []


def test_expected_serials_name_each_consumer_of_a_changed_certificate():
    installed = [{"name": "server", "serial": "1A", "changed": True},
                 {"name": "client", "serial": "0B", "changed": False},
                 {"name": "backend", "serial": "1C", "changed": True}]
    certificates = [{"name": "server", "consumers": ["nginx", "haproxy"]},
                    {"name": "client", "consumers": ["python_service"]},
                    {"name": "backend"}]
    assert rotation_expected_serials(installed, certificates) == {"nginx": "1A", "haproxy": "1A"}
    assert rotation_expected_serials([], certificates) == {}


@pytest.mark.parametrize("bad", ["server", [["server"]], {"name": "server"}])
def test_malformed_input_is_an_error(bad):
    with pytest.raises(AnsibleFilterError):
        rotation_renewed(bad)
    with pytest.raises(AnsibleFilterError):
        rotation_expected_serials(bad, [])


def test_summary_counts_every_host_and_tells_unreachable_from_renewed():
    renewed = [{"name": "server", "reasons": ["forced"], "previous_serial": "0A", "serial": "1A"}]
    hostvars = {
        "web1": {"mtls_rotate_reached": {"ping": "pong"}, "mtls_rotate_renewed": renewed},
        "lb1": {"mtls_rotate_reached": {"unreachable": True, "msg": "timed out"}, "mtls_rotate_renewed": renewed},
        "app1": {"mtls_rotate_reached": {"ping": "pong"}, "mtls_rotate_renewed": []},
        "client1": {},  # never tried: a batch before stopped the run
    }
    assert rotation_summary(["web1", "lb1", "app1", "client1"], hostvars) == {
        "renewed": {"web1": renewed}, "unreachable": ["lb1"], "hosts": 4}


def test_summary_wants_a_list_of_hosts():
    with pytest.raises(AnsibleFilterError):
        rotation_summary("web1", {"web1": {}})
