// Package benchkit holds what the benchmark programs under bench/ share:
// HTTP servers in a child process, the CPU and memory of a process, and
// the bare-check floor of the machine.
package benchkit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Child is the running program run again in another role. It prints one
// line saying where it listens, and runs until its stdin closes: when the
// parent stops it or dies.
type Child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
}

// StartChild runs this program again with args and returns the first line
// it prints.
func StartChild(args ...string) (*Child, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	// Killed with the parent, should the parent be killed before closing stdin.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	c := &Child{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
	}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	if line == "" {
		c.Stop()
		return nil, "", fmt.Errorf("%s %s said nothing within 30s", exe, strings.Join(args, " "))
	}
	return c, line, nil
}

// Pid is the child's process id, as /proc names it.
func (c *Child) Pid() string { return strconv.Itoa(c.cmd.Process.Pid) }

// Stop asks the child to end and kills it if it has not within 10s.
func (c *Child) Stop() {
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// ServeHTTP answers every path with 200 on listeners loopback ports, prints
// their addresses on one line, and serves until stdin closes. It is the
// body of the child that StartHTTP starts; name says who complains.
func ServeHTTP(listeners int, name string) error {
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok\n")
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	var addrs []string
	for range listeners {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addrs = append(addrs, ln.Addr().String())
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintln(os.Stderr, name+" -serve:", err)
			}
		}()
	}
	fmt.Println(strings.Join(addrs, " "))
	_, _ = io.Copy(io.Discard, os.Stdin)
	return srv.Close()
}

// StartHTTP starts this program again with -serve -listeners n, which must
// call ServeHTTP, and returns the child and the addresses it serves on.
func StartHTTP(listeners int) (*Child, []string, error) {
	c, line, err := StartChild("-serve", "-listeners", strconv.Itoa(listeners))
	if err != nil {
		return nil, nil, fmt.Errorf("start the HTTP servers: %w", err)
	}
	return c, strings.Fields(line), nil
}

// ServerID is the id, and the path, of the i-th server of a benchmark's
// fleet.
func ServerID(i int) string { return fmt.Sprintf("s%06d", i) }

// URL is the check URL of the i-th server, its fleet spread over addrs.
func URL(addrs []string, i int) string {
	return fmt.Sprintf("http://%s/%s", addrs[i%len(addrs)], ServerID(i))
}

// Boxes is the boxes section of a config: servers HTTP servers, checked at
// URL, in boxes of perBox.
func Boxes(servers, perBox int, addrs []string) string {
	var b strings.Builder
	b.WriteString("boxes:\n")
	for i := range servers {
		if i%perBox == 0 {
			fmt.Fprintf(&b, "  - id: b%06d\n    name: Box %d\n    servers:\n", i/perBox, i/perBox)
		}
		fmt.Fprintf(&b, "      - {id: %s, check: %q}\n", ServerID(i), URL(addrs, i))
	}
	return b.String()
}
