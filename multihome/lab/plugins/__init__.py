"""The CNI plugins the lab emulates (Canal's ``calico``), run as executables from each node's
``/opt/cni/bin`` over the CNI protocol, exactly where a node has the real ones.

Each plugin module is stdlib-only and imports nothing else of multihome, so that a plugin
process starts in a few milliseconds (it runs once per pod). ``install.py`` puts their
launchers where the nodes find them.
"""
