package check

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// inNetNSEnv marks the copy of the test binary that runs inside a network
// namespace of its own.
const inNetNSEnv = "TOCSIN_TEST_PING_SOCKET_NETNS"

// TestPingSocket pings through an unprivileged ping socket, the path a
// prober not running as root takes, with raw sockets refused so that it
// cannot pass by falling back to them. Ping sockets are allowed only to the
// groups in net.ipv4.ping_group_range, which is "1 0" (nobody) on many
// systems; rather than change the machine's setting, the test runs again
// in a network namespace of its own, where it may set its own.
func TestPingSocket(t *testing.T) {
	t.Parallel()
	if os.Getenv(inNetNSEnv) == "1" {
		pingSocketInNetNS(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPingSocket$", "-test.v", "-test.timeout=20s")
	cmd.Env = append(os.Environ(), inNetNSEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
		// Creating a namespace needs CAP_SYS_ADMIN: root, as in CI.
		t.Skipf("cannot make a network namespace for the test: %v", err)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestPingSocket") {
		t.Fatalf("in its own network namespace: %v\n%s", err, out)
	}
	t.Logf("in its own network namespace:\n%s", out)
}

func pingSocketInNetNS(t *testing.T) {
	if err := upLoopback(); err != nil {
		t.Fatalf("bring up lo: %v", err)
	}
	gid := os.Getgid()
	groups := fmt.Sprintf("%d %d", gid, gid)
	if err := os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte(groups), 0o644); err != nil {
		t.Fatalf("allow ping sockets: %v", err)
	}
	noRaw := refuse(map[string]error{"ip4:icmp": syscall.EPERM, "ip6:ipv6-icmp": syscall.EPERM})
	addrs := []string{"127.0.0.1"}
	if hasIPv6Loopback() {
		addrs = append(addrs, "::1")
	}
	for _, a := range addrs {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := ping(ctx, netip.MustParseAddr(a), 2*time.Second, noRaw)
		if err != nil {
			t.Errorf("ping %s over a ping socket: %s", a, explain(ctx, err, 2*time.Second))
		}
		cancel()
	}

	// And the raw socket is truly not what answered.
	c, raw, err := openPing(noRaw, icmpV4)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if raw {
		t.Error("opened a raw socket where a ping socket was allowed")
	}
	if _, ok := c.LocalAddr().(*net.UDPAddr); !ok {
		t.Errorf("ping socket's address is a %T, want *net.UDPAddr", c.LocalAddr())
	}
}

// upLoopback brings up lo, which a new network namespace has down.
func upLoopback() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr [40]byte // struct ifreq: the name, then a union led by the flags
	copy(ifr[:], "lo")
	ioctl := func(req uintptr) error {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
			return e
		}
		return nil
	}
	if err := ioctl(syscall.SIOCGIFFLAGS); err != nil {
		return err
	}
	flags := binary.NativeEndian.Uint16(ifr[16:])
	binary.NativeEndian.PutUint16(ifr[16:], flags|syscall.IFF_UP)
	return ioctl(syscall.SIOCSIFFLAGS)
}
