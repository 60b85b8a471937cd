package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tocsin-alarm/tocsin/bench/internal/benchkit"
)

// location is the one location of the benchmark's config.
const location = "bench"

// buildTocsin compiles cmd/tocsin into dir, as users build it.
func buildTocsin(ctx context.Context, dir string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go command on PATH (or pass -tocsin): %w", err)
	}
	out := filepath.Join(dir, "tocsin")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, goTool, "build", "-o", out, "github.com/tocsin-alarm/tocsin/cmd/tocsin").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/tocsin: %w\n%s", err, b)
	}
	return out, nil
}

// freePorts are n loopback addresses nothing listens on now: for the
// listeners of the config, and one that stays closed for the SMTP provider.
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// ports are where the tocsin process listens, and the closed SMTP port.
type ports struct {
	admin, page, ack, push, smtp string
}

// fleetYAML is a config of o.servers HTTP servers in boxes of o.perBox,
// spread over the listeners at addrs, one path per server. Nothing fails,
// so nobody is told: the SMTP provider points at a closed port.
func fleetYAML(o options, addrs []string, p ports) []byte {
	var b strings.Builder
	smtpHost, smtpPort, _ := net.SplitHostPort(p.smtp)
	fmt.Fprintf(&b, "site: {name: Bench}\nlocations: [%s]\nchecks: {interval: %s, timeout: %s}\n", location, o.interval, o.timeout)
	b.WriteString("staff: [{name: Bench, email: bench@example.net}]\n")
	fmt.Fprintf(&b, "providers: {smtp: {host: %s, port: %s, from: alarm@example.net, tls: none}}\n", smtpHost, smtpPort)
	fmt.Fprintf(&b, "notify: {listen: %q}\nstatuspage: {listen: %q}\npush: {listen: %q}\n", p.ack, p.page, p.push)
	b.WriteString(benchkit.Boxes(o.servers, o.perBox, addrs))
	return []byte(b.String())
}

// tocsinProc is `tocsin run` in a process group of its own, so that a
// Ctrl-C at the terminal reaches this program only, which stops it.
type tocsinProc struct {
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	admin   string
}

func startTocsin(bin, dir string, p ports, cpuProfile, memProfile string) (*tocsinProc, error) {
	var profiles []string
	for _, pf := range []struct{ flag, file string }{{"--cpu-profile", cpuProfile}, {"--mem-profile", memProfile}} {
		if pf.file == "" {
			continue
		}
		abs, err := filepath.Abs(pf.file) // tocsin runs elsewhere
		if err != nil {
			return nil, err
		}
		profiles = append(profiles, pf.flag, abs)
	}
	logPath := filepath.Join(dir, "tocsin.log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", filepath.Join(dir, "tocsin.yaml"), "--data", filepath.Join(dir, "data"),
		"--location", location, "--admin-listen", p.admin)
	cmd.Args = append(cmd.Args, profiles...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	t := &tocsinProc{cmd: cmd, done: make(chan struct{}), logPath: logPath, admin: p.admin}
	go func() {
		_ = cmd.Wait() // stopped on purpose, or its log says why
		f.Close()
		close(t.done)
	}()
	return t, nil
}

func (t *tocsinProc) pid() string { return strconv.Itoa(t.cmd.Process.Pid) }

func (t *tocsinProc) exited() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// stop asks tocsin to shut down, as a service manager would, and kills its
// group if it has not within its shutdown timeout and 15s.
func (t *tocsinProc) stop() {
	if t.exited() {
		return
	}
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(45 * time.Second):
		_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
		<-t.done
	}
}

// tail is the last n lines of tocsin's log.
func (t *tocsinProc) tail(n int) string {
	b, _ := os.ReadFile(t.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

var adminClient = &http.Client{Timeout: 5 * time.Second}

// waitReady waits until tocsin's /readyz answers 200, it exits, or within
// passes.
func (t *tocsinProc) waitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if t.exited() {
			return fmt.Errorf("tocsin exited; the end of its log:\n%s", t.tail(20))
		}
		if resp, err := adminClient.Get("http://" + t.admin + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !benchkit.Sleep(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("tocsin not ready within %s; the end of its log:\n%s", within, t.tail(20))
}

// counters are the sums over all labels of the counters named, read from
// tocsin's /metrics.
func (t *tocsinProc) counters(names ...string) (map[string]float64, error) {
	resp, err := adminClient.Get("http://" + t.admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	sums := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, name := range names {
			rest, ok := strings.CutPrefix(line, name)
			if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
				continue
			}
			f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
			if len(f) == 0 {
				continue
			}
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return nil, fmt.Errorf("/metrics: %s: %w", name, err)
			}
			sums[name] += v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if _, ok := sums[names[0]]; !ok {
		return nil, errors.New("/metrics has no " + names[0])
	}
	return sums, nil
}
