package config

import (
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Failover takes a box's servers out of their load balancer's pool when
// they are confirmed down, and puts them back once they have recovered. It
// never takes out the last server of the box that is up and in the pool.
type Failover struct {
	// HAProxy is every HAProxy instance in front of the box (a pair behind
	// a floating address is usual); each is told through its runtime API.
	HAProxy []HAProxy `yaml:"haproxy"`
	// Webhook is told of each action, for anything else: a DNS failover
	// API, a cloud load balancer.
	Webhook *Webhook `yaml:"webhook"`
	// Servers names a server in the load balancer, where the name differs
	// from its id.
	Servers map[string]string `yaml:"servers"`
	// RecoverAfter is how long a server must have been up again, after
	// checks.recover_after successes confirmed it, before it goes back in
	// the pool: time for caches to warm, and a server that fails again
	// meanwhile never comes back only to be taken out again. 0: at once.
	RecoverAfter Duration `yaml:"recover_after"`
}

// HAProxy is one HAProxy instance and the backend the box's servers are in.
type HAProxy struct {
	// Address is the runtime API: the path of a stats socket (unix), or
	// host:port of one bound to TCP. Either needs "level admin".
	Address string   `yaml:"address"`
	Backend string   `yaml:"backend"`
	Timeout Duration `yaml:"timeout"` // for each command
}

// Webhook is an HTTP endpoint told of each action by a signed POST.
type Webhook struct {
	URL        string   `yaml:"url"`
	SecretEnv  string   `yaml:"secret_env"`
	SecretFile string   `yaml:"secret_file"`
	Timeout    Duration `yaml:"timeout"` // for each request

	Secret Secret `yaml:"-"` // the HMAC-SHA256 key that signs each request
}

// The failover defaults.
const (
	DefaultHAProxyTimeout = 5 * time.Second
	DefaultWebhookTimeout = 10 * time.Second
)

// ServerName is the name of server in the load balancer.
func (f *Failover) ServerName(server string) string {
	if n := f.Servers[server]; n != "" {
		return n
	}
	return server
}

// IsUnix reports whether the runtime API is a unix socket.
func (h HAProxy) IsUnix() bool { return strings.HasPrefix(h.Address, "/") }

func (c *Config) failoverDefaults() {
	for i := range c.Boxes {
		f := c.Boxes[i].Failover
		if f == nil {
			continue
		}
		for j := range f.HAProxy {
			if f.HAProxy[j].Timeout == 0 {
				f.HAProxy[j].Timeout = Duration(DefaultHAProxyTimeout)
			}
		}
		if f.Webhook != nil && f.Webhook.Timeout == 0 {
			f.Webhook.Timeout = Duration(DefaultWebhookTimeout)
		}
	}
}

// haproxyNameRE is what HAProxy accepts in a proxy or server name.
var haproxyNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

func (v *validator) failover(c *Config) {
	for i := range c.Boxes {
		b := &c.Boxes[i]
		f := b.Failover
		if f == nil {
			continue
		}
		path := p("boxes", i, "failover")
		if len(f.HAProxy) == 0 && f.Webhook == nil {
			v.at(path, "failover of box %q needs haproxy or a webhook to tell", b.ID)
		}
		if f.RecoverAfter < 0 {
			v.at(p("boxes", i, "failover", "recover_after"), "recover_after must not be negative")
		}
		seen := map[string]bool{}
		for j, h := range f.HAProxy {
			hpath := p("boxes", i, "failover", "haproxy", j)
			switch {
			case h.Address == "":
				v.at(hpath, "haproxy needs an address: its runtime API, a unix socket path like /run/haproxy/admin.sock or host:port")
			case h.IsUnix():
				if filepath.Clean(h.Address) != h.Address || len(h.Address) > 107 {
					v.at(append(hpath, "address"), "address %q is not a clean socket path (at most 107 bytes)", h.Address)
				}
			default:
				if host, port, err := net.SplitHostPort(h.Address); err != nil || host == "" || !validPort(port) {
					v.at(append(hpath, "address"), "address %q must be an absolute unix socket path or host:port", h.Address)
				}
			}
			if h.Backend == "" {
				v.at(hpath, "haproxy needs the backend the servers of box %q are in", b.ID)
			} else if !haproxyNameRE.MatchString(h.Backend) {
				v.at(append(hpath, "backend"), "backend %q is not an HAProxy name: letters, digits, '-', '_', '.' and ':'", h.Backend)
			}
			if h.Timeout < 0 {
				v.at(append(hpath, "timeout"), "timeout must not be negative")
			}
			key := h.Address + " " + h.Backend
			if seen[key] && h.Address != "" && h.Backend != "" {
				v.at(hpath, "haproxy %s backend %s is listed twice", h.Address, h.Backend)
			}
			seen[key] = true
		}
		for _, id := range slices.Sorted(maps.Keys(f.Servers)) {
			if !slices.ContainsFunc(b.Servers, func(s Server) bool { return s.ID == id }) {
				v.at(p("boxes", i, "failover", "servers", id), "no server %q in box %q", id, b.ID)
			} else if n := f.Servers[id]; !haproxyNameRE.MatchString(n) {
				v.at(p("boxes", i, "failover", "servers", id), "server name %q is not a load balancer name: letters, digits, '-', '_', '.' and ':'", n)
			}
		}
		if w := f.Webhook; w != nil {
			wpath := p("boxes", i, "failover", "webhook")
			if w.URL == "" {
				v.at(wpath, "webhook needs a url")
			} else if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.at(append(wpath, "url"), "url must be an http or https URL")
			} else if u.User != nil {
				v.at(append(wpath, "url"), "url must not hold a username or password: the request is signed with the secret")
			}
			if w.Timeout < 0 {
				v.at(append(wpath, "timeout"), "timeout must not be negative")
			}
			w.Secret = v.secret(usedBy("failover"), wpath, "secret", w.SecretEnv, w.SecretFile, true)
		}
	}
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}
