"""The ordered delegate list for a pod, as Multus builds it (pkg/multus, pkg/k8sclient, pkg/types).

The cluster network comes first and is named ``eth0``; the annotation
``v1.multus-cni.io/default-network`` replaces it with a NetworkAttachmentDefinition (looked
up in the Multus namespace unless the value names one). Then every network of
``k8s.v1.cni.cncf.io/networks`` in order, resolved to its NAD, named ``net<position>``
unless it asks for an interface; two delegates with one interface name is an error. A NAD
config without a ``name`` takes the NAD's name. ``ips``, ``mac``, ``portMappings``,
``bandwidth``, ``infiniband-guid`` and ``deviceID`` become capability args (runtimeConfig)
of the extra delegates only; ``mac`` and ``ips`` also go into CNI_ARGS of the ADD (``MAC=``,
``IP=`` comma-joined: Multus DelegateAdd), for every delegate that has them, so ``static``
IPAM without the ``ips`` capability still gets the address; ``cni-args`` are merged into the
config's ``args.cni`` (the annotation wins). A NAD that can't be found fails with Multus's
words, ``cannot find a network-attachment-definition (NAME) in namespace (NS): ...``, the
cause as client-go gives it (an empty name, a name with ``/``, or no such object).
``default-route`` requests are checked here (at most one IPv4 and one IPv6 gateway over all
delegates) and turned into the per-delegate "filter default routes" flags Multus computes in
``CheckGatewayConfig``. Pure: the NAD lookup is the caller's function.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from multihome.multus.errors import DelegateError, SelectionError
from multihome.multus.selection import (
    NETWORKS_ANNOTATION,
    NetworkSelectionElement,
    parse_network_selection,
)
from multihome.multus.validate import go_ip_family, go_quote

DEFAULT_NETWORK_ANNOTATION = "v1.multus-cni.io/default-network"
DEFAULT_MULTUS_NAMESPACE = "kube-system"
DEFAULT_IFNAME = "eth0"

NadLookup = Callable[[str, str], "str | None"]
"""``(namespace, name) -> spec.config`` of that NetworkAttachmentDefinition, or None (or an
exception) when there is none."""


@dataclass(frozen=True)
class Delegate:
    """One CNI network to run for a pod, in Multus's terms (``DelegateNetConf``).

    ``network`` is the name network-status reports: ``namespace/nad`` for a NAD, the CNI
    config's own name for the cluster network. ``config`` is the conf or conflist to run,
    ready for the CNI runtime. ``add_args`` are the CNI_ARGS Multus adds for ADD only
    (``MAC``, then ``IP``). ``gateways`` is the element's ``default-route`` (None when it
    set none; ``""`` is Go's empty IP); ``filter_v4_gateway``/``filter_v6_gateway`` say
    that the default routes this delegate's plugins made are to be removed (Multus
    ``IsFilterV4Gateway``/``V6``).
    """

    network: str
    ifname: str
    config: dict[str, Any]
    is_default: bool = False
    capability_args: dict[str, Any] = field(default_factory=dict)
    add_args: tuple[tuple[str, str], ...] = ()
    gateways: tuple[str, ...] | None = None
    filter_v4_gateway: bool = False
    filter_v6_gateway: bool = False

    @property
    def config_name(self) -> str:
        """The CNI network name (``name`` of the conf/conflist): the result cache key."""
        return str(self.config["name"])

    @property
    def changes_default_route(self) -> bool:
        """Whether Multus touches this delegate's default routes after its ADD."""
        return self.filter_v4_gateway or self.filter_v6_gateway or bool(self.gateways)


def build_delegates(
    pod_namespace: str,
    pod_name: str,
    annotations: Mapping[str, str],
    cluster_network: str | bytes | Mapping[str, Any],
    lookup: NadLookup,
    *,
    multus_namespace: str = DEFAULT_MULTUS_NAMESPACE,
    default_ifname: str = DEFAULT_IFNAME,
) -> list[Delegate]:
    """The delegates for pod ``pod_namespace/pod_name``, in ADD order.

    ``cluster_network`` is the cluster network's conf or conflist (e.g. Canal's
    ``k8s-pod-network``); ``lookup`` resolves NADs. Raises :class:`DelegateError` (naming
    the pod and the network) for an invalid annotation, a missing or invalid NAD, an
    interface name clash or more than one default-route gateway per IP family.
    """
    pod = f"{pod_namespace}/{pod_name}"
    default = _default_delegate(pod, annotations, cluster_network, lookup, multus_namespace)
    try:
        elements = parse_network_selection(annotations.get(NETWORKS_ANNOTATION), pod_namespace)
    except SelectionError as err:
        raise DelegateError(f"pod {pod}: {err}", pod=pod) from err
    delegates = [default]
    for element in elements:
        delegates.append(_nad_delegate(pod, element, lookup, is_default=False))

    named = []
    for index, delegate in enumerate(delegates):
        ifname = delegate.ifname or (default_ifname if index == 0 else f"net{index}")
        named.append(replace(delegate, ifname=ifname))
    _check_ifnames(pod, named)
    return _gateway_flags(pod, named)


def cni_args(
    pod_namespace: str,
    pod_name: str,
    pod_uid: str,
    sandbox_id: str,
    delegate: Delegate | None = None,
    *,
    add: bool = False,
) -> list[tuple[str, str]]:
    """CNI_ARGS for a delegate, in Multus's order (pkg/types createRuntimeConf); for ADD,
    ``delegate``'s ``MAC`` and ``IP`` follow (pkg/multus DelegateAdd)."""
    args = [
        ("IgnoreUnknown", "true"),
        ("K8S_POD_NAMESPACE", pod_namespace),
        ("K8S_POD_NAME", pod_name),
        ("K8S_POD_INFRA_CONTAINER_ID", sandbox_id),
        ("K8S_POD_UID", pod_uid),
    ]
    if add and delegate is not None:
        args.extend(delegate.add_args)
    return args


# -- the default delegate -------------------------------------------------------------------


def _default_delegate(
    pod: str,
    annotations: Mapping[str, str],
    cluster_network: str | bytes | Mapping[str, Any],
    lookup: NadLookup,
    multus_namespace: str,
) -> Delegate:
    value = annotations.get(DEFAULT_NETWORK_ANNOTATION)
    if value is not None:
        # pkg/k8sclient tryLoadK8sPodDefaultNetwork: same syntax, the Multus namespace.
        try:
            elements = parse_network_selection(value, multus_namespace)
        except SelectionError as err:
            message = str(err).replace(NETWORKS_ANNOTATION, DEFAULT_NETWORK_ANNOTATION)
            raise DelegateError(f"pod {pod}: {message}", pod=pod) from err
        if len(elements) != 1:
            raise DelegateError(
                f"pod {pod}: {DEFAULT_NETWORK_ANNOTATION} must name exactly one network, "
                f"got {len(elements)}: {value!r}",
                pod=pod,
            )
        return _nad_delegate(pod, elements[0], lookup, is_default=True)
    what = "the cluster network"
    config = _load_config(pod, what, cluster_network)
    if not isinstance(config.get("name"), str) or not config["name"]:
        raise DelegateError(f"pod {pod}: {what}: the CNI config has no name", pod=pod)
    return Delegate(network=config["name"], ifname="", config=config, is_default=True)


# -- NAD delegates --------------------------------------------------------------------------


def _nad_delegate(
    pod: str, element: NetworkSelectionElement, lookup: NadLookup, *, is_default: bool
) -> Delegate:
    network = element.qualified_name
    cause = _client_go_problem(element.namespace, element.name)
    spec_config = None
    if cause is None:
        try:
            spec_config = lookup(element.namespace, element.name)
        except Exception as err:  # the caller's lookup: any failure means "not found"
            cause = str(err)
    if cause is None and spec_config is None:
        cause = f'network-attachment-definitions.k8s.cni.cncf.io "{element.name}" not found'
    if cause is not None:
        # pkg/k8sclient getKubernetesDelegate
        raise DelegateError(
            f"pod {pod}: network {network}: cannot find a network-attachment-definition "
            f"({element.name}) in namespace ({element.namespace}): {cause}",
            pod=pod,
            network=network,
        )
    assert spec_config is not None
    what = f"network {network}"
    config = _load_config(pod, what, spec_config)
    name = config.get("name")
    if name is None or name == "":
        config["name"] = element.name  # network-attachment-definition-client GetCNIConfigFromSpec
    elif not isinstance(name, str):
        raise DelegateError(
            f"pod {pod}: {what}: the CNI config's name must be a string", pod=pod, network=network
        )
    if element.cni_args is not None:
        _inject_cni_args(pod, what, config, element.cni_args)
    capability_args: dict[str, Any] = {}
    if not is_default:  # pkg/types mergeCNIRuntimeConfig: only for non-master delegates
        if element.port_mappings:
            capability_args["portMappings"] = copy.deepcopy(element.port_mappings)
        if element.bandwidth is not None:
            capability_args["bandwidth"] = dict(element.bandwidth)
        if element.ips:
            capability_args["ips"] = list(element.ips)
        if element.mac:
            capability_args["mac"] = element.mac
        if element.infiniband_guid:
            capability_args["infinibandGUID"] = element.infiniband_guid
        if element.device_id:
            capability_args["deviceID"] = element.device_id
    add_args: list[tuple[str, str]] = []
    if element.mac:  # pkg/multus DelegateAdd ("Deprecated in ver 3.5", still done)
        add_args.append(("MAC", element.mac))
    if element.ips or element.ips_requested:
        add_args.append(("IP", ",".join(element.ips)))
    return Delegate(
        network=network,
        ifname=element.interface or "",
        config=config,
        is_default=is_default,
        capability_args=capability_args,
        add_args=tuple(add_args),
        gateways=None if element.default_route is None else tuple(element.default_route),
    )


def _client_go_problem(namespace: str, name: str) -> str | None:
    """What client-go's request builder says before it asks the API server for the NAD
    (rest.Request Namespace/Name: IsValidPathSegmentName), or None."""
    for what, value in (("namespace", namespace), ("resource name", name)):
        if what == "resource name" and not value:
            return "resource name may not be empty"
        problems = []
        if value in (".", ".."):
            problems = [f"may not be '{value}'"]
        else:
            problems = [f"may not contain '{c}'" for c in "/%" if c in value]
        if problems:
            return f"invalid {what} {go_quote(value)}: [{' '.join(problems)}]"
    return None


def _load_config(pod: str, what: str, raw: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """A conf or conflist as a fresh dict; minimal checks as Multus LoadDelegateNetConf."""
    if isinstance(raw, Mapping):
        config: Any = copy.deepcopy(dict(raw))
    else:
        try:
            config = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as err:
            raise DelegateError(
                f"pod {pod}: {what}: the CNI config is not valid JSON: {err}", pod=pod
            ) from None
    if not isinstance(config, dict):
        raise DelegateError(f"pod {pod}: {what}: the CNI config must be a JSON object", pod=pod)
    if config.get("type"):
        return config
    plugins = config.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise DelegateError(
            f"pod {pod}: {what}: the CNI config has neither 'type' nor 'plugins'", pod=pod
        )
    for index, plugin in enumerate(plugins):
        if not isinstance(plugin, dict) or not plugin.get("type"):
            raise DelegateError(
                f"pod {pod}: {what}: plugins[{index}] must be an object with a 'type'", pod=pod
            )
    return config


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _inject_cni_args(pod: str, what: str, config: dict[str, Any], args: dict[str, Any]) -> None:
    """Merge ``args`` into ``args.cni`` of the conf, or of every plugin of a conflist."""
    targets = config["plugins"] if "plugins" in config and not config.get("type") else [config]
    for target in targets:
        holder = target.setdefault("args", {})
        if not isinstance(holder, dict):
            raise DelegateError(
                f"pod {pod}: {what}: cannot merge cni-args: 'args' in the CNI config "
                "is not an object",
                pod=pod,
            )
        cni = holder.setdefault("cni", {})
        if not isinstance(cni, dict):
            raise DelegateError(
                f"pod {pod}: {what}: cannot merge cni-args: 'args.cni' in the CNI config "
                "is not an object",
                pod=pod,
            )
        cni.update(copy.deepcopy(args))


# -- checks over the whole list -------------------------------------------------------------


def _check_ifnames(pod: str, delegates: list[Delegate]) -> None:
    seen: dict[str, Delegate] = {}
    for delegate in delegates:
        other = seen.get(delegate.ifname)
        if other is not None:
            raise DelegateError(
                f"pod {pod}: network {delegate.network}: interface {delegate.ifname!r} "
                f"is already used by network {other.network}",
                pod=pod,
                network=delegate.network,
            )
        seen[delegate.ifname] = delegate


def _gateway_flags(pod: str, delegates: list[Delegate]) -> list[Delegate]:
    """pkg/types CheckGatewayConfig: no ECMP, then who filters which family."""
    if all(d.gateways is None for d in delegates):
        return delegates
    found: dict[int, list[str]] = {4: [], 6: []}
    families: list[set[int]] = []
    for delegate in delegates:
        mine: set[int] = set()
        for gw in delegate.gateways or ():
            family = go_ip_family(gw)  # Go: gw.To4() != nil; the empty IP counts as IPv6
            found[family].append(f"{gw or '(empty IP)'} on {delegate.network}")
            mine.add(family)
        families.append(mine)
    for version, where in found.items():
        if len(where) > 1:
            raise DelegateError(
                f"pod {pod}: more than one IPv{version} default-route gateway "
                f"({', '.join(where)}): multus does not support ECMP for default-route",
                pod=pod,
            )
    return [
        replace(d, filter_v4_gateway=4 not in mine, filter_v6_gateway=6 not in mine)
        for d, mine in zip(delegates, families, strict=True)
    ]
