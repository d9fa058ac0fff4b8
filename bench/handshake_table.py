# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The handshake benchmark's table, from the result files bench/handshake.yml wrote.

    handshake_table.py RESULT.json [RESULT.json ...]

One row per server, setup (key type, worker class: the label each run
was given) and TLS version: connections per second of
full mTLS handshakes, then each other kind as a ratio to it (resumed by
session ID, by ticket), full mTLS as a ratio to one-way full, the share
of handshakes that did resume, the servers' CPU per connection (all of the cell's server
processes: HAProxy and gunicorn for the HAProxy row), the client's CPU
beside each rate, and against the targets of bench/README.md. Below it, HAProxy in front of gunicorn against gunicorn
directly (full mTLS).
"""
import json
import sys

TARGET_RESUMED = 4.0
TARGET_ONE_WAY = 0.9
TARGET_PROXY = 0.7


CLOCK_TICKS = 100  # per second: Linux's USER_HZ, the unit of /proc/<pid>/stat


def load(paths):
    """{(server, setup, tls, resume, mtls): the client's result plus server_ms, the servers' CPU per connection}."""
    cells = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        for result in data["results"]:
            kind, client = result["kind"], dict(result["client"])
            ticks = sum(after - before for after, before in zip(result["server_ticks"], result["server_ticks_before"]))
            client["server_ms"] = 1000.0 * ticks / CLOCK_TICKS / client["connections"] if client["connections"] else 0.0
            cells[(result["target"], data["setup"], kind["tls"], kind["resume"], bool(kind["mtls"]))] = client
    return cells


def ratio(part, whole):
    return part / whole if whole else 0.0


def table(cells):
    rows = sorted({key[:3] for key in cells}, key=lambda k: (k[0], k[1], k[2]))
    lines = [
        "| server | setup | TLS | mTLS full /s | resumed, ID | resumed, ticket | mTLS full / one-way full"
        " | resumed share (ID, ticket) | server CPU ms/conn (mTLS full, resumed, one-way)"
        " | client CPU, cores (full, resumed) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for server, setup, tls in rows:
        full = cells.get((server, setup, tls, "none", True))
        if full is None:
            continue
        kinds = {name: cells.get((server, setup, tls, name, True)) for name in ("id", "ticket")}
        one_way = cells.get((server, setup, tls, "none", False))

        def rel(cell, target, invert=False):
            if cell is None:
                return "-"
            value = ratio(full["rate"], cell["rate"]) if invert else ratio(cell["rate"], full["rate"])
            return "%.2fx%s" % (value, " ok" if value >= target else " (below %.1fx)" % target)

        shares = ", ".join("-" if kinds[n] is None else "%.0f%%" % (100 * kinds[n]["resumed_share"])
                           for n in ("id", "ticket"))
        resumed = kinds["ticket"] or kinds["id"]
        server_ms = ", ".join("-" if cell is None else "%.1f" % cell["server_ms"] for cell in (full, resumed, one_way))
        lines.append("| %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %.2f, %s |" % (
            server, setup, tls, full["rate"], rel(kinds["id"], TARGET_RESUMED),
            rel(kinds["ticket"], TARGET_RESUMED), rel(one_way, TARGET_ONE_WAY, invert=True), shares, server_ms,
            full["client_cpu_cores"], "-" if resumed is None else "%.2f" % resumed["client_cpu_cores"]))
    proxy_lines = []
    for setup, tls in sorted({(k[1], k[2]) for k in cells}):
        via = cells.get(("haproxy+gunicorn", setup, tls, "none", True))
        direct = cells.get(("gunicorn", setup, tls, "none", True))
        if via and direct:
            value = ratio(via["rate"], direct["rate"])
            proxy_lines.append("| %s | %s | %.0f | %.0f | %.2fx%s |" % (
                setup, tls, via["rate"], direct["rate"], value,
                " ok" if value >= TARGET_PROXY else " (below %.1fx)" % TARGET_PROXY))
    if proxy_lines:
        lines += ["", "| setup | TLS | HAProxy to gunicorn /s | gunicorn direct /s | ratio |", "|---|---|---|---|---|"]
        lines += proxy_lines
    problems = ["%s %s TLS %s %s %s: %d errors (%s), statuses %s" % (
        key[0], key[1], key[2], key[3], "mTLS" if key[4] else "one-way", cell["errors"], cell["last_error"],
        cell["statuses"]) for key, cell in sorted(cells.items()) if cell["errors"]]
    if problems:
        lines += ["", "Errors:"] + ["- " + p for p in problems]
    return "\n".join(lines)


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    print(table(load(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
