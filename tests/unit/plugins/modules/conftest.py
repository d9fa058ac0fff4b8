# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a module's main() the way Ansible does: arguments in, the JSON it exits with out."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args


@pytest.fixture
def run_module(request, capsys):
    """run(args, check_mode=False): main() of the test file's MODULE with args; the result it printed."""
    main = request.module.MODULE.main

    def run(args, check_mode=False):
        if check_mode:
            args = dict(args, _ansible_check_mode=True)
        with patch_module_args(args):
            with pytest.raises(SystemExit) as exited:
                main()
        result = json.loads(capsys.readouterr().out)
        assert bool(exited.value.code) == bool(result.get("failed")), result
        return result

    return run
