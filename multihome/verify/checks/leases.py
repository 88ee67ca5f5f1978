"""DHCP as it behaves over time: each pod interface with dhcp IPAM holds a current lease
on its network's DHCP server (dnsmasq's lease file, in the lab's state: expiry, MAC, IP).

A lease that was not renewed (the server stopped: ``multihome fault stop-dhcp``) expires on
the server while the pod keeps the address: the CNI dhcp daemon (plugins 1.1.1, as the lab
runs it) retries its renewals with a backoff and leaves the address on the interface, so the
server may give the address to another client. Once the server answers again the daemon's
renewal puts the lease back. A lease file that can't be read is a skip (nothing to judge by).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from multihome.lab.names import fit
from multihome.lab.safefs import StateError
from multihome.lab.state import LabState

from ..collect import Evidence, Work
from ..report import CheckResult
from .base import Context, Judge, short

Leases = dict[str, tuple[int, str]] | str | None


def read_leases(lab: str, networks: Iterable[str]) -> dict[str, Leases]:
    """Each network's leases (see :func:`_leases`): the evidence this family judges, read
    from the lab's state by ``verify.run`` (``Work.leases`` names the networks)."""
    state = LabState(lab)
    return {network: _leases(state, network) for network in sorted(networks)}


def _leases(state: LabState, network: str) -> Leases:
    """IP -> (expiry epoch, 0 for infinite; MAC) from the network's dnsmasq lease file, or
    why it can't be read; None when there is none (no lab's dnsmasq keeps the leases)."""
    path = state.dir / f"{fit(f'dnsmasq-{network}')}.leases"
    try:
        text = state.read_text(path)
    except FileNotFoundError:
        return None
    except (OSError, StateError) as exc:
        return f"cannot read {path}: {exc}"
    found: dict[str, tuple[int, str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0].isdigit():
            found[fields[2]] = (int(fields[0]), fields[1].lower())
    return found


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(epoch))


def derive(ctx: Context, work: Work) -> Judge:
    todo = [
        (pod, view, iface)
        for pod, view in ctx.running()
        for iface in pod.interfaces
        if "dhcp" in iface.ipam_types
        and iface.lab_network
        and (net := ctx.lab.networks.get(iface.lab_network)) is not None
        and net.dhcp_server
    ]
    work.leases.update(str(iface.lab_network) for _, _, iface in todo)

    def judge(ev: Evidence) -> list[CheckResult]:
        now = time.time()
        results = []
        for pod, view, iface in todo:
            network = str(iface.lab_network)
            leases = ev.leases.get(network)
            if leases is None:
                continue
            subject = f"{pod.ref} {iface.name}"
            title = (
                f"{short(pod.ref)}'s {iface.name} holds a current lease from {network}'s "
                "DHCP server"
            )
            address = view.address(iface.name)
            if isinstance(leases, str) or address is None:
                why = leases if isinstance(leases, str) else f"{iface.name} has no address"
                results.append(CheckResult("dhcp-lease", subject, title, "skip", (), why))
                continue
            found = leases.get(address)
            entry = view.entry(iface.name) or {}
            mac = str(entry.get("mac") or "").lower()
            if found is not None and (found[0] == 0 or found[0] > now):
                left = "never expires" if found[0] == 0 else f"expires at {_clock(found[0])}"
                line = f"{address} ({found[1]}) leased on {network}, {left}"
                if mac and found[1] != mac:
                    cause = (
                        f"{network}'s DHCP server leased {address} to {found[1]}, not to "
                        f"{short(pod.ref)}'s {iface.name} ({mac}): two clients hold one address"
                    )
                    results.append(
                        CheckResult("dhcp-lease", subject, title, "fail", (line,), cause)
                    )
                else:
                    results.append(CheckResult("dhcp-lease", subject, title, "pass", (line,)))
                continue
            if found is not None:
                ago = f"{now - found[0]:.0f} s ago"
                line = f"{address} leased on {network} until {_clock(found[0])}, {ago}"
            else:
                line = f"{network}'s DHCP server holds no lease for {address}"
            cause = (
                f"the lease of {address} on {network} ran out and was not renewed (the CNI dhcp "
                f"daemon on {view.node} keeps the address and retries): {network}'s DHCP server "
                f"does not answer, so it may give {address} to another client"
            )
            results.append(CheckResult("dhcp-lease", subject, title, "fail", (line,), cause))
        return results

    return judge
