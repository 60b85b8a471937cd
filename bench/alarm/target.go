package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
)

// The ways the target fails.
const (
	modeRefuse = "refuse" // its listener closes: connections are refused
	modeHang   = "hang"   // it accepts connections and never answers
	// modeSecond: the second server of a box of two is refused, the first
	// being down already: the box goes down, and the SMS timed is the one
	// saying so ("NOW DOWN").
	modeSecond = "second"
)

// target is the server whose outages are timed. Up, it answers as a
// healthy server does; down, it fails in the way its mode names, at the
// same address, so that the config's check never changes.
type target struct {
	mode string

	mu   sync.Mutex
	addr string
	ln   net.Listener // refuse: nil while down
	web  *http.Server // hang: serves every connection accepted while up
	down bool
	held []net.Conn // hang: connections accepted while down, never answered
}

func newTarget(mode string) (*target, error) {
	t := &target{mode: mode, addr: "127.0.0.1:0"}
	l, err := net.Listen("tcp", t.addr)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	t.ln, t.addr = l, l.Addr().String()
	switch mode {
	case modeRefuse, modeSecond:
		go acceptAndClose(l)
	case modeHang:
		t.web = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "ok\n")
		})}
		go t.web.Serve(holding{l, t})
	default:
		l.Close()
		return nil, fmt.Errorf("unknown mode %q: use %s, %s or %s", mode, modeRefuse, modeHang, modeSecond)
	}
	return t, nil
}

// Check is the check URL that watches the target. A tcp:// check passes
// as soon as the connection is made, so a server that accepts and never
// answers is watched over HTTP: the check must wait for an answer.
func (t *target) Check() string {
	if t.mode == modeHang {
		return "http://" + t.addr + "/"
	}
	return "tcp://" + t.addr
}

// Fail makes the target fail from now on.
func (t *target) Fail() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.down = true
	if t.mode != modeHang && t.ln != nil {
		t.ln.Close()
		t.ln = nil
	}
}

// Recover makes the target answer again. The connections held while it
// hung are closed, as a server restarted would close them.
func (t *target) Recover() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.down = false
	for _, c := range t.held {
		c.Close()
	}
	t.held = nil
	if t.mode != modeHang && t.ln == nil {
		l, err := net.Listen("tcp", t.addr)
		if err != nil {
			return fmt.Errorf("target: listen again at %s: %w", t.addr, err)
		}
		t.ln = l
		go acceptAndClose(l)
	}
	return nil
}

// Close stops the target for good.
func (t *target) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.held {
		c.Close()
	}
	t.held = nil
	if t.web != nil {
		t.web.Close()
	} else if t.ln != nil {
		t.ln.Close()
	}
	t.ln = nil
}

// hold keeps c unanswered if the target is down, and says whether it did.
func (t *target) hold(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		t.held = append(t.held, c)
	}
	return t.down
}

// acceptAndClose is a server that is up for a tcp:// check: it accepts.
func acceptAndClose(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// holding is the hanging target's listener: while the target is down it
// accepts connections and keeps them, so that a client connects, sends its
// request and waits for an answer that never comes.
type holding struct {
	net.Listener
	t *target
}

func (l holding) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.t.hold(c) {
			return c, nil
		}
	}
}
