"""Longhorn's instance-managers as the chosen release runs them (longhorn-manager).

- 1.4: two per node, an engine one ``instance-manager-e-<hash>`` and a replica one
  ``instance-manager-r-<hash>``; 1.5 and later: one ``instance-manager-<hash>`` (type
  ``aio``) that runs both (``types.GetInstanceManagerName``, ``InstanceManagerTypeAllInOne``).
- ``<hash>``: the first 32 hex digits of SHA-512 over node name + instance-manager image,
  plus the data engine (``v1``) from 1.6 on (``util.GetStringChecksum``).
- The image is the chart's default, ``longhornio/longhorn-instance-manager:v<version>``
  (a Rancher Apps install uses Rancher's mirrored images, which give other hashes).
- Pod labels: ``types.GetInstanceManagerLabels`` (``longhorn.io/data-engine`` from 1.6).
- A replica process started in an instance-manager takes 15 ports from the manager's
  range, which starts at 10000 (longhorn-instance-manager ``--port-range 10000-30000``):
  gRPC control on the first, the data server the engine streams blocks to on the second,
  the sync agent on the third (longhorn-engine ``util.ParseAddresses``).
"""

from __future__ import annotations

import hashlib

IMAGE_REPOSITORY = "longhornio/longhorn-instance-manager"
ENGINE, REPLICA, AIO = "engine", "replica", "aio"
PREFIX = {ENGINE: "instance-manager-e-", REPLICA: "instance-manager-r-", AIO: "instance-manager-"}
SERVES_REPLICAS = (REPLICA, AIO)
"""Instance-manager types whose replica processes take the replication stream."""
RUNS_ENGINES = (ENGINE, AIO)
"""Instance-manager types whose engines send it."""
DATA_ENGINE = "v1"

REPLICA_CONTROL_PORT = 10000
REPLICA_DATA_PORT = 10001
REPLICA_SYNC_PORT = 10002
REPLICA_PORTS = (REPLICA_CONTROL_PORT, REPLICA_DATA_PORT, REPLICA_SYNC_PORT)
"""The first replica process's control, data and sync-agent ports."""

TYPE_LABEL = "longhorn.io/instance-manager-type"


def line(version: str) -> tuple[int, int]:
    """``1.4.4`` -> (1, 4)."""
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def types_for(version: str) -> tuple[str, ...]:
    """The instance-manager types a node runs in that release."""
    return (ENGINE, REPLICA) if line(version) < (1, 5) else (AIO,)


def image_for(version: str) -> str:
    return f"{IMAGE_REPOSITORY}:v{version}"


def _checksum(text: str, length: int) -> str:
    return hashlib.sha512(text.encode()).hexdigest()[:length]


def name_for(im_type: str, node: str, version: str, image: str | None = None) -> str:
    """The instance-manager's (and its pod's) name on ``node``."""
    image = image or image_for(version)
    data_engine = DATA_ENGINE if line(version) >= (1, 6) else ""
    return PREFIX[im_type] + _checksum(node + image + data_engine, 32)


def labels_for(im_type: str, node: str, version: str, image: str | None = None) -> dict[str, str]:
    """The labels Longhorn puts on the instance-manager pod."""
    image = image or image_for(version)
    canonical = image.replace(":", "-").replace("/", "-")
    labels = {
        "longhorn.io/component": "instance-manager",
        TYPE_LABEL: im_type,
        "longhorn.io/instance-manager-image": "imi-" + _checksum(canonical, 8),
        "longhorn.io/managed-by": "longhorn-manager",
        "longhorn.io/node": node,
    }
    if line(version) >= (1, 6):
        labels["longhorn.io/data-engine"] = DATA_ENGINE
    return dict(sorted(labels.items()))
