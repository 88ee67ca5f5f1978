"""Benchmark: issue 13.2 and 13.6, the seed's style at scale. ``bench.scale --dhcp``: one
server and N agents with 10 pods each, every pod with eth0 (Canal) and two macvlan + DHCP
attachments (real dnsmasq, the CNI dhcp daemon per agent); ``up``, ``verify`` (every check
must pass) and ``down`` as whole commands, memory, the per-pod cost from 10 to 100 agents,
and verify's probes against the neighbour budget (entries left learnt, the host's
``table_fulls``).

Run as ``python -m bench.scale_dhcp [--sizes 10,100] [--rounds 1]`` from the repository
root, as root; ``python -m bench scale_dhcp`` keeps the result in
bench/results/scale_dhcp.txt (apart from bench.scale's static pods in scale.txt).
"""

from __future__ import annotations

import sys

from bench import scale


def main(argv: list[str]) -> int:
    defaults = [] if "--sizes" in argv else ["--sizes", "10,100"]
    defaults += [] if "--rounds" in argv else ["--rounds", "1"]
    return scale.main(["--dhcp", *defaults, *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
