# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""certificate_files: the role's paths are the module's (one layout, module_utils _layout)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.layout import certificate_files
from ansible_collections.fleet.mtls.plugins.module_utils import _layout


def test_the_files_of_an_entry():
    assert certificate_files("/etc/fleet-mtls/certs/", "server") == dict(
        key="/etc/fleet-mtls/certs/server.key", pending_key="/etc/fleet-mtls/certs/server.key.pending",
        cert="/etc/fleet-mtls/certs/server.crt", chain="/etc/fleet-mtls/certs/server.chain.pem",
        fullchain="/etc/fleet-mtls/certs/server.fullchain.pem", combined=None)
    assert certificate_files("/d", "server", True)["combined"] == "/d/server.combined.pem"
    assert _layout.decision_files(certificate_files("/d", "client")) == ["/d/client.fullchain.pem", "/d/client.key",
                                                                         "/d/client.crt", "/d/client.chain.pem"]


@pytest.mark.parametrize("directory, name", [("/d", "../outside"), ("/d", ""), ("", "server"), (None, "server")])
def test_a_name_that_is_not_one_or_no_directory_is_refused(directory, name):
    with pytest.raises(AnsibleFilterError, match="certificate_files"):
        certificate_files(directory, name)
