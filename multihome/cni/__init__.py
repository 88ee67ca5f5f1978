"""A CNI runtime (libcni's role): configs, plugin execution, results, versions, result cache.

Modules: ``conf`` (loading/validation), ``types`` (results and their version conversion),
``version``, ``names`` (libcni's ID rules), ``invoke`` (running one plugin), ``ns`` (the node's
namespaces), ``cache`` (libcni's result cache), ``runtime`` (the chain logic), ``errors``.
"""

from .conf import NetworkConfig, NetworkConfigList, load_network_config
from .errors import CNIError, CNITimeout, ConfigError
from .invoke import Deadline, ExecEvent
from .ns import NodeNamespaces
from .runtime import CNIRuntime, RuntimeConf
from .types import DNS, Interface, IPConfig, Result, Route
from .version import LEGACY_RESULT_VERSIONS, SUPPORTED_VERSIONS

__all__ = [
    "DNS",
    "LEGACY_RESULT_VERSIONS",
    "SUPPORTED_VERSIONS",
    "CNIError",
    "CNIRuntime",
    "CNITimeout",
    "ConfigError",
    "Deadline",
    "ExecEvent",
    "IPConfig",
    "Interface",
    "NetworkConfig",
    "NetworkConfigList",
    "NodeNamespaces",
    "Result",
    "Route",
    "RuntimeConf",
    "load_network_config",
]
