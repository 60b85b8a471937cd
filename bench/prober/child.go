package main

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

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

// child is this program run again in another role. It prints one line
// saying where it listens, and runs until its stdin closes: when the parent
// stops it or dies.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
}

func startChild(args ...string) (*child, string, error) {
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
	c := &child{cmd: cmd, stdin: stdin, done: make(chan struct{})}
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
		c.stop()
		return nil, "", fmt.Errorf("%s %s said nothing within 30s", exe, strings.Join(args, " "))
	}
	return c, line, nil
}

func (c *child) pid() string { return strconv.Itoa(c.cmd.Process.Pid) }

// stop asks the child to end and kills it if it has not within 10s.
func (c *child) stop() {
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// serveHTTP answers every path with 200 on listeners loopback ports.
func serveHTTP(listeners int) error {
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
				fmt.Fprintln(os.Stderr, "bench/prober -serve:", err)
			}
		}()
	}
	fmt.Println(strings.Join(addrs, " "))
	_, _ = io.Copy(io.Discard, os.Stdin)
	return srv.Close()
}

// serveJetStream runs a JetStream server on a loopback port, as `tocsin run`
// embeds it but in a process of its own.
func serveJetStream(dir string) error {
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{Dir: dir, Listen: "127.0.0.1:-1", Open: true})
	if err != nil {
		return err
	}
	fmt.Println(ns.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}
