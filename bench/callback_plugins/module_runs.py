# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark aid: count module runs per target host, and write them as JSON.

A module run counts once per host it ran on (each loop item counts), under the
host it was delegated to when delegated. Skipped items and controller-only
actions (debug, set_fact, ...) do not count. The counts go to the file named
by FLEET_MTLS_BENCH_COUNTS.
"""

from __future__ import annotations

import collections
import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: module_runs
type: aggregate
short_description: Count module runs per host for the benchmark
description: Writes the runs per host as a JSON object to the file named by FLEET_MTLS_BENCH_COUNTS.
"""


# Actions that run on the controller only: no module is sent to a host.
CONTROLLER_ONLY = {"debug", "set_fact", "assert", "meta", "add_host", "group_by", "include_role",
                   "include_tasks", "import_role", "import_tasks", "fail", "pause", "validate_argument_spec"}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "module_runs"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.runs = collections.Counter()

    def _count(self, result):
        if result._task.action.rsplit(".", 1)[-1] in CONTROLLER_ONLY:
            return
        # A delegated run reports the delegate's connection variables; in the
        # benchmark's inventory every host's ansible_host is its name.
        delegated = result._result.get("_ansible_delegated_vars") or {}
        self.runs[delegated.get("ansible_host") or result._host.get_name()] += 1

    def v2_runner_on_ok(self, result):
        if "results" not in result._result:
            self._count(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._count(result)

    def v2_runner_item_on_ok(self, result):
        self._count(result)

    def v2_runner_item_on_failed(self, result):
        self._count(result)

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("FLEET_MTLS_BENCH_COUNTS")
        if path:
            with open(path, "w") as handle:
                json.dump(dict(self.runs), handle)
