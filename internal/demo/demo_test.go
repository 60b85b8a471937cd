package demo

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestWorld: the embedded template makes a config the loader accepts,
// naming every server of the fleet at the address it answers on, and
// Close leaves none of them answering.
func TestWorld(t *testing.T) {
	w, err := New(Options{Page: "http://127.0.0.1:1/", Interval: 5 * time.Second, Every: time.Minute, Outage: 20 * time.Second, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cfg := w.Config
	if got, want := len(cfg.Boxes), len(fleet())+1; got != want {
		t.Errorf("%d boxes in the config, want %d: the fleet and the backups", got, want)
	}
	targets := cfg.Targets()
	if len(targets) != len(w.fleet)+1 || len(targets) == 0 {
		t.Fatalf("%d servers in the config, %d in the fleet and the backup", len(targets), len(w.fleet))
	}
	if tg, ok := cfg.Target("backup-nightly"); !ok || !tg.Server.IsPush() || cfg.Push.Listen != w.PushListener.Addr().String() {
		t.Errorf("the nightly backup does not report in to the push service's port: %+v", tg.Server)
	}
	for _, s := range w.fleet {
		tg, ok := cfg.Target(s.Name())
		if !ok {
			t.Errorf("%s is not in the config", s.Name())
			continue
		}
		if tg.Server.Check != s.Check() {
			t.Errorf("%s checked at %s, answers at %s", s.Name(), tg.Server.Check, s.Check())
		}
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Errorf("%s: %v", s.Name(), err)
			continue
		}
		c.Close()
	}
	if cfg.Escalation.SocialAfter.D() != 10*time.Second {
		t.Errorf("social_after = %v, want half the outage", cfg.Escalation.SocialAfter)
	}
	w.Close()
	for _, s := range w.fleet {
		if c, err := net.Dial("tcp", s.Addr()); err == nil {
			c.Close()
			t.Errorf("%s still answers after Close", s.Name())
		}
	}
}
