"""multihome: check, emulate, verify and render multi-homed Kubernetes network designs."""

__version__ = "0.1.0"
