#!/bin/sh
# Runs inside the test VM: the lab itself (`multihome up`, `verify`, `exec`, `down`) on a
# design with an ipvlan NAD and a vlan-plugin NAD (labs/kernel-features.yaml), which this
# machine's kernel refuses. The lab's overlays sit on the VM's ext4 root, not on 9p.
# Each check prints "CHECK <name> PASS|FAIL <why>"; the host's pytest reads them.
PYTHONPATH=$PWD/src:$PWD/pydeps
export PYTHONPATH
MULTIHOME_STATE_DIR=/run/multihome-test
export MULTIHOME_STATE_DIR
LAB=labs/kernel-features.yaml
FAILED=0
mh() { python3 -m multihome "$@"; }
pass() { echo "CHECK $1 PASS"; }
fail() { echo "CHECK $1 FAIL $2"; FAILED=1; }
check() { n=$1; shift; if out=$("$@" 2>&1); then pass "$n"; else fail "$n" "$(echo "$out" | tail -5 | tr '\n' ' ')"; fi; echo "$out"; }
t() { start=$(date +%s); "$@"; rc=$?; echo "took $(( $(date +%s) - start )) s: $*"; return $rc; }

t check lab-validate mh validate "$LAB"
t check lab-up mh up "$LAB"
t check lab-verify mh verify
check lab-pod-ipvlan-l2 sh -c "python3 -m multihome exec kfeat/pod-a -- ip -d link show net1 | grep -q 'ipvlan  *mode l2'"
check lab-pod-vlan-100 sh -c "python3 -m multihome exec kfeat/pod-a -- ip -d link show net2 | grep -q 'vlan protocol 802.1Q id 100'"
check lab-pod-b-reaches-pod-a-over-vlan100 mh exec kfeat/pod-b -- ping -c 2 -W 2 10.100.0.11
t check lab-down mh down
check lab-left-no-namespace sh -c '[ -z "$(ip netns list)" ]'

# A host as systemd leaves it: /run is a tmpfs with mounts below it (/run/lock, /run/user/N,
# /run/netns after `ip netns add`), and no /run/cni. The sandbox then covers /run with an
# overlay to make /run/cni, and the kernel refuses to clone a lower layer whose submounts are
# locked in the sandbox's user namespace ("overlayfs: failed to clone lowerpath", EINVAL).
mkdir -p /run/lock
mount -t tmpfs tmpfs /run/lock
t check lab-mount-under-run-up mh up "$LAB"
mh down >/dev/null 2>&1
umount /run/lock
exit $FAILED
