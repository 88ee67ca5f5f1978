// rtnetlink for the plugin: the few link, address and route requests it makes, as `ip`
// would send them, hand-packed over a raw NETLINK_ROUTE socket (the Go port of rtnl.py).
// A socket belongs to the network namespace its thread was in when it was made: make one
// after entering the namespace to work on (with the OS thread locked).
package main

import (
	"encoding/binary"
	"net"
	"syscall"
	"unsafe"
)

const (
	solNetlink      = 270
	netlinkCapAck   = 10
	netlinkExtAck   = 11
	nlmFRequest     = 0x1
	nlmFAck         = 0x4
	nlmFDump        = 0x300
	nlmFExcl        = 0x200
	nlmFCreate      = 0x400
	nlmFCapped      = 0x100
	nlmFAckTLVs     = 0x200
	nlmsgError      = 2
	nlmsgDone       = 3
	nlmsgerrAttrMsg = 1
	rtmNewLink      = 16
	rtmDelLink      = 17
	rtmGetLink      = 18
	rtmNewAddr      = 20
	rtmGetAddr      = 22
	rtmNewRoute     = 24
	iflaAddress     = 1
	iflaIfname      = 3
	iflaMTU         = 4
	iflaTxqlen      = 13
	iflaLinkinfo    = 18
	iflaNetNsFd     = 28
	iflaInfoKind    = 1
	iflaInfoData    = 2
	vethInfoPeer    = 1
	ifaAddress      = 1
	ifaLocal        = 2
	rtaDst          = 1
	rtaOif          = 4
	rtaGateway      = 5
	iffUp           = 0x1
	rtTableMain     = 254
	rtprotBoot      = 3 // what `ip route add` sets
	rtScopeUniverse = 0
	rtScopeLink     = 253
	rtnUnicast      = 1
	headerSize      = 16
	ifinfoSize      = 16
	ifaddrSize      = 8
)

// netlink's structs are in the host's byte order
var native binary.ByteOrder = func() binary.ByteOrder {
	x := uint16(1)
	if *(*byte)(unsafe.Pointer(&x)) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}()

// nlError is the kernel's refusal: its errno and extended-ack message, if any.
type nlError struct {
	errno  syscall.Errno
	extack string
}

func (e *nlError) Error() string {
	if e.extack != "" {
		return strerror(e.errno) + " (" + e.extack + ")"
	}
	return strerror(e.errno)
}

func errnoOf(err error) syscall.Errno {
	switch e := err.(type) {
	case *nlError:
		return e.errno
	case syscall.Errno:
		return e
	}
	return 0
}

// strerror is libc's text of errno (what Python's os.strerror gives): Go's table has the
// same words without the capital.
func strerror(errno syscall.Errno) string {
	s := errno.Error()
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		s = string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

type rtnl struct {
	fd  int
	seq uint32
}

func openRtnl() (*rtnl, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	// errors without the request echoed back, with the kernel's message if any
	_ = syscall.SetsockoptInt(fd, solNetlink, netlinkCapAck, 1)
	_ = syscall.SetsockoptInt(fd, solNetlink, netlinkExtAck, 1)
	return &rtnl{fd: fd}, nil
}

func (nl *rtnl) close() { syscall.Close(nl.fd) }

func u16(v int) []byte { b := make([]byte, 2); native.PutUint16(b, uint16(v)); return b }
func u32(v int) []byte { b := make([]byte, 4); native.PutUint32(b, uint32(v)); return b }

// attr is one rtattr, padded to 4 bytes.
func attr(kind int, payload []byte) []byte {
	size := 4 + len(payload)
	out := append(append(u16(size), u16(kind)...), payload...)
	return append(out, make([]byte, (4-size%4)%4)...)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func ifinfo(index, flags, change int) []byte {
	return cat([]byte{0, 0}, u16(0), u32(index), u32(flags), u32(change))
}

func cname(name string) []byte { return append([]byte(name), 0) }

type answer struct {
	kind    int
	payload []byte
}

// request sends one request with an ack asked; its answers before the ack.
func (nl *rtnl) request(kind, flags int, body []byte) ([]answer, error) {
	nl.seq++
	seq := nl.seq
	flags |= nlmFRequest | nlmFAck
	msg := cat(u32(headerSize+len(body)), u16(kind), u16(flags), u32(int(seq)), u32(0), body)
	if _, err := syscall.Write(nl.fd, msg); err != nil {
		return nil, err
	}
	var answers []answer
	buf := make([]byte, 1<<16)
	for {
		n, err := syscall.Read(nl.fd, buf)
		if err != nil {
			return nil, err
		}
		data := buf[:n]
		for off := 0; off+headerSize <= len(data); {
			size := int(native.Uint32(data[off:]))
			kind_ := int(native.Uint16(data[off+4:]))
			flags_ := int(native.Uint16(data[off+6:]))
			seq_ := native.Uint32(data[off+8:])
			if size < headerSize || off+size > len(data) {
				break
			}
			payload := append([]byte(nil), data[off+headerSize:off+size]...)
			off += (size + 3) &^ 3
			if seq_ != seq {
				continue // not ours (none is expected: one request at a time)
			}
			if kind_ != nlmsgError && kind_ != nlmsgDone {
				answers = append(answers, answer{kind_, payload})
				continue
			}
			// the ack, or a dump's end: its error code first
			code := int32(native.Uint32(payload))
			if code == 0 {
				return answers, nil
			}
			return nil, &nlError{syscall.Errno(-code), extack(payload, kind_, flags_)}
		}
	}
}

func attrs(data []byte, off int, each func(kind int, value []byte)) {
	for off+4 <= len(data) {
		size := int(native.Uint16(data[off:]))
		kind := int(native.Uint16(data[off+2:]))
		if size < 4 || off+size > len(data) {
			return
		}
		each(kind&0x3FFF, data[off+4:off+size])
		off += (size + 3) &^ 3
	}
}

func extack(payload []byte, kind, flags int) string {
	if flags&nlmFAckTLVs == 0 {
		return ""
	}
	off := 4
	if kind == nlmsgError {
		echoed := headerSize
		if flags&nlmFCapped == 0 && len(payload) >= 8 {
			echoed = int(native.Uint32(payload[4:]))
		}
		off += (echoed + 3) &^ 3
	}
	msg := ""
	attrs(payload, off, func(k int, v []byte) {
		if k == nlmsgerrAttrMsg && msg == "" {
			for len(v) > 0 && v[len(v)-1] == 0 {
				v = v[:len(v)-1]
			}
			msg = string(v)
		}
	})
	return msg
}

func mac(s string) []byte {
	hw, _ := net.ParseMAC(s)
	return hw
}

// addVeth: `ip link add NAME address MAC mtu MTU txqueuelen Q type veth peer name PEER
// address PEER_MAC mtu MTU txqueuelen Q netns FD`.
func (nl *rtnl) addVeth(name, hostMAC, peer, peerMAC string, peerNsFd, mtu, txqlen int) error {
	peerAttrs := cat(
		attr(iflaIfname, cname(peer)),
		attr(iflaAddress, mac(peerMAC)),
		attr(iflaMTU, u32(mtu)),
		attr(iflaTxqlen, u32(txqlen)),
		attr(iflaNetNsFd, u32(peerNsFd)),
	)
	info := cat(attr(iflaInfoKind, []byte("veth")),
		attr(iflaInfoData, attr(vethInfoPeer, cat(ifinfo(0, 0, 0), peerAttrs))))
	body := cat(ifinfo(0, 0, 0),
		attr(iflaIfname, cname(name)),
		attr(iflaAddress, mac(hostMAC)),
		attr(iflaMTU, u32(mtu)),
		attr(iflaTxqlen, u32(txqlen)),
		attr(iflaLinkinfo, info),
	)
	_, err := nl.request(rtmNewLink, nlmFCreate|nlmFExcl, body)
	return err
}

// linkIndex is the index of the link name; ENODEV if there is none.
func (nl *rtnl) linkIndex(name string) (int, error) {
	answers, err := nl.request(rtmGetLink, 0, cat(ifinfo(0, 0, 0), attr(iflaIfname, cname(name))))
	if err != nil {
		return 0, err
	}
	for _, a := range answers {
		if a.kind == rtmNewLink && len(a.payload) >= ifinfoSize {
			return int(int32(native.Uint32(a.payload[4:]))), nil
		}
	}
	return 0, &nlError{errno: syscall.ENODEV}
}

func (nl *rtnl) setUp(index int) error {
	_, err := nl.request(rtmNewLink, 0, ifinfo(index, iffUp, iffUp))
	return err
}

func (nl *rtnl) deleteLink(name string) error {
	_, err := nl.request(rtmDelLink, 0, cat(ifinfo(0, 0, 0), attr(iflaIfname, cname(name))))
	return err
}

// ipBytes: the address in network order and its family, or an error as inet_pton's.
func ipBytes(s string) ([]byte, int, error) {
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, 0, syscall.EINVAL
	}
	if v4 := ip.To4(); v4 != nil && !containsColon(s) {
		return v4, syscall.AF_INET, nil
	}
	return ip.To16(), syscall.AF_INET6, nil
}

func containsColon(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return true
		}
	}
	return false
}

// addAddress: `ip addr add ADDRESS/PREFIXLEN dev DEV`, scope global, no broadcast.
func (nl *rtnl) addAddress(address string, prefixlen, index int) error {
	raw, family, err := ipBytes(address)
	if err != nil {
		return err
	}
	body := cat([]byte{byte(family), byte(prefixlen), 0, rtScopeUniverse}, u32(index),
		attr(ifaLocal, raw), attr(ifaAddress, raw))
	_, err = nl.request(rtmNewAddr, nlmFCreate|nlmFExcl, body)
	return err
}

type addrInfo struct {
	address   string
	prefixlen int
	scope     int
}

// addresses of link index.
func (nl *rtnl) addresses(index int) ([]addrInfo, error) {
	answers, err := nl.request(rtmGetAddr, nlmFDump, make([]byte, ifaddrSize))
	if err != nil {
		return nil, err
	}
	var found []addrInfo
	for _, a := range answers {
		if a.kind != rtmNewAddr || len(a.payload) < ifaddrSize {
			continue
		}
		p := a.payload
		if int(native.Uint32(p[4:])) != index {
			continue
		}
		var local, addr []byte
		attrs(p, ifaddrSize, func(k int, v []byte) {
			if k == ifaLocal {
				local = v
			} else if k == ifaAddress {
				addr = v
			}
		})
		if local == nil {
			local = addr
		}
		if local != nil {
			found = append(found, addrInfo{net.IP(local).String(), int(p[1]), int(p[3])})
		}
	}
	return found, nil
}

// addRoute: `ip route add DST/PREFIXLEN [via VIA] dev DEV [scope SCOPE]`, table main, proto
// boot, unicast.
func (nl *rtnl) addRoute(dst string, prefixlen, index int, via string, scope int) error {
	raw, family, err := ipBytes(dst)
	if err != nil {
		return err
	}
	body := cat([]byte{byte(family), byte(prefixlen), 0, 0, rtTableMain, rtprotBoot,
		byte(scope), rtnUnicast}, u32(0), attr(rtaDst, raw))
	if via != "" {
		gw, _, err := ipBytes(via)
		if err != nil {
			return err
		}
		body = append(body, attr(rtaGateway, gw)...)
	}
	body = append(body, attr(rtaOif, u32(index))...)
	_, err = nl.request(rtmNewRoute, nlmFCreate|nlmFExcl, body)
	return err
}
