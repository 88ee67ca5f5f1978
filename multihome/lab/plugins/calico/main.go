// Canal's calico CNI plugin, as the lab runs it on each node (/opt/cni/bin/calico).
//
// It makes a pod's eth0 the way Calico's CNI plugin does in Kubernetes mode (projectcalico/calico,
// cni-plugin/pkg/k8s/k8s.go and pkg/dataplane/linux/dataplane_linux.go):
//
//   - IPAM: with host-local, "subnet": "usePodCidr" (any case) becomes the node's pod CIDR, read
//     from the Node object, and the IPAM plugin is executed from CNI_PATH;
//   - a veth pair: "cali" + the first 11 hex digits of sha1("<namespace>.<pod>") on the node, with
//     the MAC ee:ee:ee:ee:ee:ee, the conf's mtu and txqlen 0 on both ends; the pod's end is
//     CNI_IFNAME with a random locally administered MAC, as the kernel would pick;
//   - on the node side: route_localnet=1, proxy_arp=1, neigh.proxy_delay=0, forwarding=1,
//     accept_ra=0 (IPv6: accept_dad=0, proxy_ndp=1), then a /32 (/128) route per pod address
//     dev cali... scope link;
//   - in the pod: the address as a /32 (/128), 169.254.1.1 dev eth0 scope link and each route
//     (default: 0.0.0.0/0, or the host-local routes) via 169.254.1.1, answered by proxy ARP on the
//     node's end; IPv6 routes via the node end's link-local address; ip_forward=0 unless
//     container_settings.allow_ip_forwarding;
//   - the result: IPAM's, with the addresses as /32 (/128), interfaces [cali..., eth0], every IP
//     on interface 1.
//
// Where the lab differs from a node: Calico reads the Node's podCIDR from the Kubernetes API;
// this plugin reads the Node object the lab writes at nodeObject (see lab/canal.py). It writes
// no WorkloadEndpoint (there is no Felix to program policy from it).
//
// Links, addresses and routes are made over rtnetlink from this process (rtnl.go), as Calico's
// plugin makes them with netlink: the IPAM plugin is the only process it starts. Go's standard
// library only (Debian's golang-go, no module download); setns on a locked OS thread. Some
// error texts keep the words of the Python plugin it replaced ("[Errno N] Text: 'path'"), which
// the lab's tests and users' logs already know.
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

const (
	nodeObject   = "/var/lib/cni/multihome/node.json"
	hostSideMAC  = "ee:ee:ee:ee:ee:ee"
	hostSideLL6  = "fe80::ecee:eeff:feee:eeee" // the link-local address of hostSideMAC
	gatewayV4    = "169.254.1.1"
	txqlen       = 0
	cloneNewnet  = 0x40000000
	eIncompat    = 1
	eInvalidEnv  = 4
	eIO          = 5
	eDecode      = 6
	eInvalidConf = 7
	ePlugin      = 100
)

var supportedVersions = []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"}
var defaultRoutes = []string{"0.0.0.0/0", "::/0"}

type obj = map[string]interface{}

type pluginError struct {
	code         int
	msg, details string
}

func (e *pluginError) Error() string { return e.msg }

func perr(code int, msg, details string) *pluginError { return &pluginError{code, msg, details} }

// ioError is what Python's str(OSError) says: "[Errno N] Text: 'path'".
func ioError(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		if errno, ok := pe.Err.(syscall.Errno); ok {
			return fmt.Sprintf("[Errno %d] %s: '%s'", int(errno), strerror(errno), pe.Path)
		}
	}
	if errno, ok := err.(syscall.Errno); ok {
		return fmt.Sprintf("[Errno %d] %s", int(errno), strerror(errno))
	}
	return err.Error()
}

func errText(err error) string {
	if errno := errnoOf(err); errno != 0 {
		if e, ok := err.(*nlError); ok {
			return e.Error()
		}
		return strerror(errno)
	}
	return err.Error()
}

// pyList is a list of strings as Python prints it.
func pyList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = "'" + s + "'"
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

func vethName(namespace, pod string) string {
	sum := sha1.Sum([]byte(namespace + "." + pod))
	return "cali" + hex.EncodeToString(sum[:])[:11]
}

func str(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "True"
		}
		return "False"
	}
	return fmt.Sprint(v)
}

func truthy(v interface{}) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, _ := x.Float64()
		return f != 0
	case []interface{}:
		return len(x) > 0
	case obj:
		return len(x) > 0
	}
	return true
}

func decode(data []byte) (interface{}, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("extra data")
	}
	return v, nil
}

func encode(v interface{}) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimRight(buf.Bytes(), "\n")
}

func deepCopy(v interface{}) interface{} {
	out, _ := decode(encode(v))
	return out
}

// -- namespaces and sysctls ------------------------------------------------------------------

func setnsFd(fd int) error {
	_, _, errno := syscall.Syscall(sysSetns, uintptr(fd), cloneNewnet, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func enterNetns(path string) error {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	if err := setnsFd(fd); err != nil {
		return perr(ePlugin, "failed to enter netns "+path, strerror(errnoOf(err)))
	}
	return nil
}

// inNetns runs fn with this (locked) thread in the namespace at path, then back.
func inNetns(path string, fn func() error) error {
	self, err := syscall.Open("/proc/thread-self/ns/net", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(self)
	if err := enterNetns(path); err != nil {
		return err
	}
	ferr := fn()
	if err := setnsFd(self); err != nil && ferr == nil {
		ferr = perr(ePlugin, "failed to enter netns /proc/self/fd/"+strconv.Itoa(self), strerror(errnoOf(err)))
	}
	return ferr
}

func writeSysctl(path, name, value string, required bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err == nil {
		_, err = f.WriteString(value)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil && required {
		return perr(ePlugin, fmt.Sprintf("failed to set %s=%s", name, value), ioError(err))
	}
	return nil
}

func sysctl(name, value string) error {
	return writeSysctl("/proc/sys/"+strings.ReplaceAll(name, ".", "/"), name, value, true)
}

// sysctlDev writes the path: an interface name may hold a '.', which sysctl's dotted form can't say.
func sysctlDev(family, kind, dev, key, value string, required bool) error {
	path := fmt.Sprintf("/proc/sys/net/%s/%s/%s/%s", family, kind, dev, key)
	name := fmt.Sprintf("net.%s.%s.%s.%s", family, kind, dev, key)
	return writeSysctl(path, name, value, required)
}

// -- IPAM -------------------------------------------------------------------------------------

func podCIDRs(conf obj) (string, string, error) {
	data, err := os.ReadFile(nodeObject)
	if os.IsNotExist(err) {
		return "", "", perr(ePlugin, "cannot read this node's Node object", nodeObject+" is missing")
	}
	if err != nil {
		return "", "", perr(ePlugin, "cannot read this node's Node object", ioError(err))
	}
	v, err := decode(data)
	node, ok := v.(obj)
	if err != nil || !ok {
		return "", "", perr(ePlugin, "cannot read this node's Node object", "not a JSON object")
	}
	meta, _ := node["metadata"].(obj)
	name := str(meta["name"])
	wanted := name
	if truthy(conf["nodename"]) {
		wanted = str(conf["nodename"])
	}
	if wanted != name {
		return "", "", perr(ePlugin, fmt.Sprintf("nodes %q not found", wanted), "")
	}
	spec, _ := node["spec"].(obj)
	var cidrs []string
	if list, ok := spec["podCIDRs"].([]interface{}); ok && len(list) > 0 {
		for _, c := range list {
			cidrs = append(cidrs, str(c))
		}
	} else if truthy(spec["podCIDR"]) {
		cidrs = []string{str(spec["podCIDR"])}
	}
	v4, v6 := "", ""
	for _, c := range cidrs {
		if strings.Contains(c, ":") {
			if v6 == "" {
				v6 = c
			}
		} else if v4 == "" {
			v4 = c
		}
	}
	return v4, v6, nil
}

// usePodCidr swaps host-local's usePodCidr/usePodCidrIPv6 for the node's pod CIDRs.
func usePodCidr(ipam obj, conf obj) error {
	var found []string
	swap := func(section interface{}) error {
		s, ok := section.(obj)
		if !ok {
			return perr(eInvalidConf, fmt.Sprintf(
				"failed to parse host-local IPAM data; was expecting a dict, not: %v", section), "")
		}
		subnet, ok := s["subnet"].(string)
		low := strings.ToLower(subnet)
		if !ok || (low != "usepodcidr" && low != "usepodcidripv6") {
			return nil
		}
		if found == nil {
			v4, v6, err := podCIDRs(conf)
			if err != nil {
				return err
			}
			found = []string{v4, v6}
		}
		cidr, family := found[0], "IPv4"
		if low == "usepodcidripv6" {
			cidr, family = found[1], "IPv6"
		}
		if cidr == "" {
			return perr(ePlugin, fmt.Sprintf("%s found but there is no %s CIDR configured", subnet, family), "")
		}
		s["subnet"] = cidr
		return nil
	}
	if err := swap(ipam); err != nil {
		return err
	}
	ranges, present := ipam["ranges"]
	if !present || ranges == nil {
		return nil
	}
	sets, ok := ranges.([]interface{})
	if !ok {
		return perr(eInvalidConf, "failed to parse host-local IPAM ranges section", "")
	}
	for _, set := range sets {
		sections, ok := set.([]interface{})
		if !ok {
			return perr(eInvalidConf, "failed to parse host-local IPAM range set", "")
		}
		for _, section := range sections {
			if err := swap(section); err != nil {
				return err
			}
		}
	}
	return nil
}

func findPlugin(kind string) (string, error) {
	cniPath := os.Getenv("CNI_PATH")
	for _, dir := range strings.Split(cniPath, ":") {
		path := filepath.Join(dir, kind)
		if dir != "" && syscall.Access(path, 1) == nil {
			return path, nil
		}
	}
	return "", perr(ePlugin, fmt.Sprintf("failed to find plugin %q in path [%s]", kind, cniPath), "")
}

func ipamExec(conf obj, command string) (obj, error) {
	ipam := conf["ipam"].(obj)
	path, err := findPlugin(str(ipam["type"]))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), "CNI_COMMAND="+command)
	cmd.Stdin = bytes.NewReader(encode(conf))
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = io.Discard
	if err := cmd.Run(); err != nil {
		if _, exited := err.(*exec.ExitError); !exited {
			return nil, err
		}
		e, _ := decode(out.Bytes())
		failure, ok := e.(obj)
		if !ok {
			failure = obj{"code": json.Number(strconv.Itoa(ePlugin)), "msg": strings.TrimSpace(out.String())}
		}
		code := ePlugin
		if c, ok := failure["code"]; ok {
			if n, err := strconv.Atoi(str(c)); err == nil {
				code = n
			}
		}
		return nil, perr(code, str(failure["msg"]), str(failure["details"]))
	}
	if command != "ADD" {
		return nil, nil
	}
	v, err := decode(out.Bytes())
	if err != nil {
		return nil, perr(eDecode, "the IPAM plugin's result is not JSON", "")
	}
	result, ok := v.(obj)
	if !ok {
		return nil, perr(eDecode, "the IPAM plugin's result is not a JSON object", "")
	}
	return result, nil
}

func ipamConf(conf obj) (obj, error) {
	ipam, ok := conf["ipam"].(obj)
	if !ok {
		return nil, perr(eInvalidConf, "the calico plugin needs an ipam section with a type", "")
	}
	kind, ok := ipam["type"].(string)
	if !ok {
		return nil, perr(eInvalidConf, "the calico plugin needs an ipam section with a type", "")
	}
	if kind != "host-local" {
		return conf, nil
	}
	copied := deepCopy(ipam).(obj)
	if err := usePodCidr(copied, conf); err != nil {
		return nil, err
	}
	out := obj{}
	for k, v := range conf {
		out[k] = v
	}
	out["ipam"] = copied
	return out, nil
}

// routes to put in the pod via the node: host-local's routes dsts if any, else the default ones.
func routes(conf obj) []string {
	ipam, _ := conf["ipam"].(obj)
	var custom []string
	if list, ok := ipam["routes"].([]interface{}); ok {
		for _, r := range list {
			if m, ok := r.(obj); ok {
				custom = append(custom, str(m["dst"]))
			}
		}
	}
	if str(ipam["type"]) != "host-local" || len(custom) == 0 {
		return defaultRoutes
	}
	if truthy(conf["include_default_routes"]) {
		return append(append([]string{}, defaultRoutes...), custom...)
	}
	return custom
}

// addresses of an IPAM result (A.B.C.D/N), any result version.
func addresses(result obj) []string {
	var out []string
	if ips, ok := result["ips"]; ok {
		list, _ := ips.([]interface{})
		for _, ip := range list {
			m, _ := ip.(obj)
			out = append(out, str(m["address"]))
		}
		return out
	}
	for _, k := range []string{"ip4", "ip6"} {
		if m, ok := result[k].(obj); ok {
			out = append(out, str(m["ip"]))
		}
	}
	return out
}

func hostPrefix(address string) string {
	ip := strings.SplitN(address, "/", 2)[0]
	if strings.Contains(ip, ":") {
		return ip + "/128"
	}
	return ip + "/32"
}

// prefix splits "A.B.C.D/N"; an address alone is a host route, as ip reads it.
func prefix(cidr string) (string, int, error) {
	ip, length, has := strings.Cut(cidr, "/")
	if !has || length == "" {
		if strings.Contains(ip, ":") {
			return ip, 128, nil
		}
		return ip, 32, nil
	}
	n, err := strconv.Atoi(length)
	if err != nil {
		return "", 0, fmt.Errorf("invalid literal for int() with base 10: '%s'", length)
	}
	return ip, n, nil
}

// -- the commands -----------------------------------------------------------------------------

func podArgs() (string, string, error) {
	args := map[string]string{}
	for _, item := range strings.Split(os.Getenv("CNI_ARGS"), ";") {
		if k, v, ok := strings.Cut(item, "="); ok {
			args[k] = v
		}
	}
	ns, pod := args["K8S_POD_NAMESPACE"], args["K8S_POD_NAME"]
	if ns == "" || pod == "" {
		return "", "", perr(eInvalidEnv, "K8S_POD_NAMESPACE and K8S_POD_NAME must be set in CNI_ARGS",
			"this calico runs in Kubernetes mode only")
	}
	return ns, pod, nil
}

func env(name string) (string, error) {
	v := os.Getenv(name)
	if v == "" {
		return "", perr(eInvalidEnv, "required env variable "+name+" missing", "")
	}
	return v, nil
}

func randomMAC() string {
	raw := make([]byte, 6)
	_, _ = rand.Read(raw)
	raw[0] = (raw[0] & 0xFE) | 0x02 // unicast, locally administered (the kernel's choice)
	parts := make([]string, 6)
	for i, b := range raw {
		parts[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(parts, ":")
}

func mtuOf(conf obj) (int, error) {
	if !truthy(conf["mtu"]) {
		return 1500, nil
	}
	s := strings.TrimSpace(str(conf["mtu"]))
	n, err := strconv.Atoi(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return 0, fmt.Errorf("invalid literal for int() with base 10: '%s'", s)
		}
		n = int(f)
	}
	return n, nil
}

func cmdAdd(conf obj) (obj, error) {
	netns, err := env("CNI_NETNS")
	if err != nil {
		return nil, err
	}
	ifname, err := env("CNI_IFNAME")
	if err != nil {
		return nil, err
	}
	if _, err := env("CNI_CONTAINERID"); err != nil {
		return nil, err
	}
	namespace, pod, err := podArgs()
	if err != nil {
		return nil, err
	}
	mtu, err := mtuOf(conf)
	if err != nil {
		return nil, err
	}
	ipconf, err := ipamConf(conf)
	if err != nil {
		return nil, err
	}
	result, err := ipamExec(ipconf, "ADD")
	if err != nil {
		return nil, err
	}
	host := vethName(namespace, pod)
	addrs := addresses(result)
	var mac string
	if len(addrs) == 0 {
		err = perr(ePlugin, "IPAM plugin returned missing IP config", "")
	} else {
		mac, err = setup(conf, netns, ifname, host, mtu, addrs)
	}
	if err != nil {
		release(ipconf, host)
		return nil, err
	}
	return makeResult(result, host, ifname, mac, netns), nil
}

// release undoes a failed ADD: the address back, the veth pair (if it was made) removed.
func release(ipconf obj, host string) {
	_, _ = ipamExec(ipconf, "DEL")
	if nl, err := openRtnl(); err == nil {
		_ = nl.deleteLink(host)
		nl.close()
	}
}

// nlDo is a netlink request; a refusal becomes a pluginError what, naming op and the reason.
func nlDo(what, op string, err error) error {
	if err != nil {
		return perr(ePlugin, what, op+": "+errText(err))
	}
	return nil
}

// addVeth makes the pair, its pod end in the pod's namespace. An old link of the node end's
// name (a pod not cleaned up) is deleted and the pair made again, as Calico does.
func addVeth(nl *rtnl, netns, ifname, host, mac string, mtu int, what string) error {
	fd, err := syscall.Open(netns, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return perr(ePlugin, what, fmt.Sprintf("cannot open network namespace %q: %s", netns, strerror(errnoOf(err))))
	}
	defer syscall.Close(fd)
	op := fmt.Sprintf("link add %s type veth peer name %s netns %s", host, ifname, netns)
	add := func() error { return nl.addVeth(host, hostSideMAC, ifname, mac, fd, mtu, txqlen) }
	first := add()
	if first == nil {
		return nil
	}
	if errnoOf(first) != syscall.EEXIST {
		return nlDo(what, op, first)
	}
	if err := nl.deleteLink(host); err != nil {
		if errnoOf(err) == syscall.ENODEV { // the name taken is the pod's: nothing of ours to delete
			return nlDo(what, op, first)
		}
		return perr(ePlugin, "failed to delete old hostVeth "+host, "link del "+host+": "+errText(err))
	}
	return nlDo(what, op, add())
}

func has(addrs []string, v6 bool) bool {
	for _, a := range addrs {
		if strings.Contains(a, ":") == v6 {
			return true
		}
	}
	return false
}

// setup makes the veth pair, the node side and the pod side; returns the pod side's MAC.
func setup(conf obj, netns, ifname, host string, mtu int, addrs []string) (string, error) {
	has4, has6 := has(addrs, false), has(addrs, true)
	mac := randomMAC()
	what := "failed to set up the veth pair and the host side routes of " + host
	err := func() error {
		nl, err := openRtnl()
		if err != nil {
			return err
		}
		defer nl.close()
		if err := addVeth(nl, netns, ifname, host, mac, mtu, what); err != nil {
			return err
		}
		index, err := nl.linkIndex(host)
		if err := nlDo(what, "link show "+host, err); err != nil {
			return err
		}
		if err := nlDo(what, "link set "+host+" up", nl.setUp(index)); err != nil {
			return err
		}
		for _, a := range addrs {
			dst := hostPrefix(a)
			ip, n, err := prefix(dst)
			if err == nil {
				err = nl.addRoute(ip, n, index, "", rtScopeLink)
			}
			if err := nlDo(what, "route add "+dst+" dev "+host+" scope link", err); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		return "", err
	}
	type sc struct {
		family, kind, key, value string
		required                 bool
	}
	var sysctls []sc
	if has4 {
		sysctls = append(sysctls, sc{"ipv4", "conf", "route_localnet", "1", true},
			sc{"ipv4", "neigh", "proxy_delay", "0", false},
			sc{"ipv4", "conf", "proxy_arp", "1", true},
			sc{"ipv4", "conf", "forwarding", "1", true})
	}
	if has6 {
		sysctls = append(sysctls, sc{"ipv6", "conf", "accept_dad", "0", true},
			sc{"ipv6", "conf", "disable_ipv6", "0", true},
			sc{"ipv6", "conf", "proxy_ndp", "1", true},
			sc{"ipv6", "conf", "forwarding", "1", true})
	}
	sysctls = append(sysctls, sc{"ipv6", "conf", "accept_ra", "0", false})
	for _, s := range sysctls {
		if err := sysctlDev(s.family, s.kind, host, s.key, s.value, s.required); err != nil {
			return "", err
		}
	}
	err = inNetns(netns, func() error {
		if has6 {
			if err := sysctlDev("ipv6", "conf", ifname, "accept_dad", "0", true); err != nil {
				return err
			}
			for _, key := range []string{"all", "default", "lo"} {
				if err := sysctl("net.ipv6.conf."+key+".disable_ipv6", "0"); err != nil {
					return err
				}
			}
		}
		if err := podSide(conf, ifname, addrs); err != nil {
			return err
		}
		forward := "0"
		if cs, ok := conf["container_settings"].(obj); ok && truthy(cs["allow_ip_forwarding"]) {
			forward = "1"
		}
		if has4 {
			if err := sysctl("net.ipv4.ip_forward", forward); err != nil {
				return err
			}
		}
		if has6 {
			return sysctl("net.ipv6.conf.all.forwarding", forward)
		}
		return nil
	})
	return mac, err
}

// podSide, in the pod's namespace: its end up, 169.254.1.1 on link, the routes via it
// (IPv6: via the node end's link-local), then the addresses.
func podSide(conf obj, ifname string, addrs []string) error {
	what := "failed to configure the pod's interface"
	nl, err := openRtnl()
	if err != nil {
		return err
	}
	defer nl.close()
	index, err := nl.linkIndex(ifname)
	if err := nlDo(what, "link show "+ifname, err); err != nil {
		return err
	}
	if err := nlDo(what, "link set "+ifname+" up", nl.setUp(index)); err != nil {
		return err
	}
	route := func(r, via string, scope int, op string) error {
		ip, n, err := prefix(r)
		if err == nil {
			err = nl.addRoute(ip, n, index, via, scope)
		}
		return nlDo(what, op, err)
	}
	rs := routes(conf)
	if has(addrs, false) {
		op := "route add " + gatewayV4 + "/32 dev " + ifname + " scope link"
		if err := route(gatewayV4+"/32", "", rtScopeLink, op); err != nil {
			return err
		}
		for _, r := range rs {
			if !strings.Contains(r, ":") {
				op := "route add " + r + " via " + gatewayV4 + " dev " + ifname
				if err := route(r, gatewayV4, rtScopeUniverse, op); err != nil {
					return err
				}
			}
		}
	}
	if has(addrs, true) {
		for _, r := range rs {
			if strings.Contains(r, ":") {
				op := "route add " + r + " via " + hostSideLL6 + " dev " + ifname
				if err := route(r, hostSideLL6, rtScopeUniverse, op); err != nil {
					return err
				}
			}
		}
	}
	for _, a := range addrs {
		cidr := hostPrefix(a)
		ip, n, err := prefix(cidr)
		if err == nil {
			err = nl.addAddress(ip, n, index)
		}
		if err := nlDo(what, "addr add "+cidr+" dev "+ifname, err); err != nil {
			return err
		}
	}
	return nil
}

func makeResult(ipam obj, host, ifname, mac, netns string) obj {
	result := obj{}
	for k, v := range ipam {
		result[k] = v
	}
	if ips, ok := result["ips"]; ok {
		result["interfaces"] = []interface{}{
			obj{"name": host}, obj{"name": ifname, "mac": mac, "sandbox": netns},
		}
		list, _ := ips.([]interface{})
		out := make([]interface{}, 0, len(list))
		for _, ip := range list {
			m := obj{}
			for k, v := range ip.(obj) {
				m[k] = v
			}
			m["address"] = hostPrefix(str(m["address"]))
			m["interface"] = json.Number("1")
			out = append(out, m)
		}
		result["ips"] = out
	} else { // 0.1.0 / 0.2.0
		for _, k := range []string{"ip4", "ip6"} {
			if m, ok := result[k].(obj); ok {
				c := obj{}
				for k2, v := range m {
					c[k2] = v
				}
				c["ip"] = hostPrefix(str(c["ip"]))
				result[k] = c
			}
		}
	}
	return result
}

func cmdDel(conf obj) error {
	ifname, err := env("CNI_IFNAME")
	if err != nil {
		return err
	}
	if _, err := env("CNI_CONTAINERID"); err != nil {
		return err
	}
	if _, _, err := podArgs(); err != nil {
		return err
	}
	var errs []error
	ipconf, err := ipamConf(conf)
	if err == nil {
		_, err = ipamExec(ipconf, "DEL")
	}
	if err != nil {
		if _, ok := err.(*pluginError); !ok {
			return err
		}
		errs = append(errs, err)
	}
	netns := os.Getenv("CNI_NETNS")
	if _, serr := os.Stat(netns); netns != "" && serr == nil {
		err := inNetns(netns, func() error {
			nl, err := openRtnl()
			if err == nil {
				err = nl.deleteLink(ifname)
				nl.close()
			}
			if err != nil && errnoOf(err) != syscall.ENODEV { // already gone: DEL must succeed then
				errs = append(errs, perr(ePlugin, "failed to clean up the pod's interface",
					"link del "+ifname+": "+errText(err)))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// cmdCheck: the pod's interface and the node's veth exist, with prevResult's addresses.
func cmdCheck(conf obj) error {
	netns, err := env("CNI_NETNS")
	if err != nil {
		return err
	}
	ifname, err := env("CNI_IFNAME")
	if err != nil {
		return err
	}
	namespace, pod, err := podArgs()
	if err != nil {
		return err
	}
	prev, ok := conf["prevResult"].(obj)
	if !ok {
		return perr(eInvalidConf, "CHECK needs a prevResult", "")
	}
	want := map[string]bool{}
	for _, a := range addresses(prev) {
		want[hostPrefix(a)] = true
	}
	host := vethName(namespace, pod)
	nl, err := openRtnl()
	if err != nil {
		return err
	}
	_, err = nl.linkIndex(host)
	nl.close()
	if err := nlDo("the node has no interface "+host, "link show "+host, err); err != nil {
		return err
	}
	var found []addrInfo
	err = inNetns(netns, func() error {
		nl, err := openRtnl()
		if err != nil {
			return err
		}
		defer nl.close()
		index, err := nl.linkIndex(ifname)
		if err := nlDo("the pod has no interface "+ifname, "link show "+ifname, err); err != nil {
			return err
		}
		found, err = nl.addresses(index)
		return nlDo("cannot read "+ifname+"'s addresses", "addr show", err)
	})
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, a := range found {
		if a.scope == rtScopeUniverse {
			have[fmt.Sprintf("%s/%d", a.address, a.prefixlen)] = true
		}
	}
	var lacking, haveList []string
	for a := range want {
		if !have[a] {
			lacking = append(lacking, a)
		}
	}
	if len(lacking) == 0 {
		return nil
	}
	for a := range have {
		haveList = append(haveList, a)
	}
	sort.Strings(lacking)
	sort.Strings(haveList)
	return perr(ePlugin, ifname+" lacks "+strings.Join(lacking, ", "), "it has "+pyList(haveList))
}

func run() (int, []byte) {
	command := os.Getenv("CNI_COMMAND")
	version := "1.0.0"
	fail := func(err error) (int, []byte) {
		e := struct {
			CNIVersion string `json:"cniVersion"`
			Code       int    `json:"code"`
			Msg        string `json:"msg"`
			Details    string `json:"details,omitempty"`
		}{CNIVersion: version}
		if pe, ok := err.(*pluginError); ok {
			e.Code, e.Msg, e.Details = pe.code, pe.msg, pe.details
		} else {
			e.Code, e.Msg = eIO, ioError(err)
		}
		return 1, encode(e)
	}
	if command == "VERSION" {
		return 0, encode(obj{"cniVersion": "1.0.0", "supportedVersions": supportedVersions})
	}
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		return fail(err)
	}
	v, err := decode(data)
	if err != nil {
		return fail(perr(eDecode, "failed to load netconf", err.Error()))
	}
	conf, ok := v.(obj)
	if !ok {
		return fail(perr(eDecode, "failed to load netconf", "not a JSON object"))
	}
	version = "0.1.0"
	if truthy(conf["cniVersion"]) {
		version = str(conf["cniVersion"])
	}
	supported := false
	for _, s := range supportedVersions {
		supported = supported || s == version
	}
	if !supported {
		return fail(perr(eIncompat, fmt.Sprintf("incompatible CNI versions; config is '%s', plugin supports %s",
			version, pyList(supportedVersions)), ""))
	}
	switch command {
	case "ADD":
		result, err := cmdAdd(conf)
		if err != nil {
			return fail(err)
		}
		return 0, encode(result)
	case "DEL":
		err = cmdDel(conf)
	case "CHECK":
		err = cmdCheck(conf)
	default:
		err = perr(eInvalidEnv, "unknown CNI_COMMAND: "+command, "")
	}
	if err != nil {
		return fail(err)
	}
	return 0, nil
}

func main() {
	// setns moves one thread: keep this goroutine on it from start to exit
	runtime.LockOSThread()
	code, out := run()
	os.Stdout.Write(out)
	os.Exit(code)
}
