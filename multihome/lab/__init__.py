"""Realize a plan on the kernel: sandbox, netlink, segments, nodes, hosts, daemons, pods."""
