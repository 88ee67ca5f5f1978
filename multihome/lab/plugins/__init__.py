"""The CNI plugins the lab emulates, run as executables from each node's ``/opt/cni/bin`` over
the CNI protocol, exactly where a node has the real ones: Canal's ``calico`` (Go, in
``calico/``, built by ``make calico``) and ``whereabouts`` (Python, ``whereabouts.py``).

The Python plugin is stdlib-only and imports nothing else of multihome, so that its process
starts in a few milliseconds (it runs once per attachment); ``lab/launchers.py`` writes its
launcher, ``lab/canal.py`` installs calico's binary.
"""
