// Package clustertest proves that Tocsin survives what production does to
// it: each service in a process of its own against a cluster of three real
// nats-server processes, a storm of a thousand servers failing at once
// while the stream leader is killed, and services killed and restarted at
// random while incidents come and go. It holds tests only.
package clustertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/parallel"
	"github.com/tocsin-alarm/tocsin/internal/testkit/servertest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// binaries are the programs the tests run.
type binaries struct {
	nats, tocsin string
}

// built holds the binaries, built by the first test that needs them into
// a directory that TestMain removes at the end of the run; err says why
// they could not be built.
var built struct {
	once sync.Once
	dir  string
	bin  binaries
	err  error
}

// parallelTests is how many tests run at once unless -parallel says
// otherwise: those marked parallel (the crashes, the killed prober) mostly
// wait on processes of their own, not on the CPU, and start together
// rather than one after another on a machine of two. The tests that
// assert how soon something happens, and the storm, run alone first.
const parallelTests = 3

func TestMain(m *testing.M) {
	parallel.At(parallelTests)
	dir, err := os.MkdirTemp("", "tocsin-clustertest-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "clustertest: %v\n", err)
		os.Exit(1)
	}
	built.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build returns nats-server (from the module the project depends on) and
// tocsin, compiled once per run without -race to spare the CPU. A test
// that cannot have them is skipped, saying why.
func build(t *testing.T) binaries {
	t.Helper()
	if testing.Short() {
		t.Skip("cluster tests run real processes for minutes; skipped with -short")
	}
	built.once.Do(func() { built.bin, built.err = buildIn(built.dir) })
	if built.err != nil {
		servertest.SkipOrFail(t, "cannot build the binaries: %v", built.err)
	}
	return built.bin
}

func buildIn(dir string) (binaries, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return binaries{}, fmt.Errorf("no go command on PATH: %w", err)
	}
	b := binaries{nats: filepath.Join(dir, "nats-server"), tocsin: filepath.Join(dir, "tocsin")}
	for _, p := range []struct{ out, pkg string }{
		{b.nats, "github.com/nats-io/nats-server/v2"},
		{b.tocsin, "github.com/tocsin-alarm/tocsin/cmd/tocsin"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		out, err := exec.CommandContext(ctx, goTool, "build", "-o", p.out, p.pkg).CombinedOutput()
		cancel()
		if err != nil {
			return binaries{}, fmt.Errorf("build %s: %w\n%s", p.pkg, err, out)
		}
	}
	return b, nil
}

// proc is one program running as a process of its own, in its own process
// group so that a kill reaches anything it started. Its output goes to a
// log file that a failing test prints the end of.
type proc struct {
	t       *testing.T
	name    string
	path    string
	args    []string
	env     []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	starts int
}

func newProc(t *testing.T, logDir, name, path string, env []string, args ...string) *proc {
	p := &proc{t: t, name: name, path: path, args: args, env: env, logPath: filepath.Join(logDir, name+".log")}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- end of %s's log (%s):\n%s", p.name, p.logPath, p.tail(40))
		}
	})
	return p
}

// start starts the process; its log is appended to across restarts.
func (p *proc) start() {
	p.t.Helper()
	if err := p.startErr(); err != nil {
		p.t.Fatal(err)
	}
}

// startErr is start for a goroutine other than the test's.
func (p *proc) startErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s started twice", p.name)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log of %s: %w", p.name, err)
	}
	p.starts++
	fmt.Fprintf(f, "=== start %d at %s: %s %s\n", p.starts, time.Now().Format(time.RFC3339Nano), filepath.Base(p.path), strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // killed on purpose, or it says why in its log
		f.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// kill stops the process at once with SIGKILL, as a crash or a lost host
// would, and waits until it is gone. It does nothing if it is not running.
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // the group; gone already is fine
	<-p.done
	p.cmd, p.done = nil, nil
}

// running reports whether the process was started and has not exited.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// log is the process's output so far, over all its starts.
func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitLog waits until the log holds want since the latest start.
func (p *proc) waitLog(want string, within time.Duration) {
	p.t.Helper()
	if wait.Until(context.Background(), within, wait.Spaced(100*time.Millisecond, func() bool {
		out := p.log()
		if i := strings.LastIndex(out, "=== start "); i >= 0 && strings.Contains(out[i:], want) {
			return true
		}
		if !p.running() {
			p.t.Fatalf("%s exited before it logged %q:\n%s", p.name, want, p.tail(40))
		}
		return false
	})) {
		return
	}
	p.t.Fatalf("%s did not log %q within %v:\n%s", p.name, want, within, p.tail(40))
}
