"""A real cluster through the Kubernetes API, client side: reading the objects verify judges
(``read``) and running commands in pods (``podexec``). Knows nothing of labs."""

from .read import ClusterError, Objects, connect, read_objects

__all__ = ["ClusterError", "Objects", "connect", "read_objects"]
