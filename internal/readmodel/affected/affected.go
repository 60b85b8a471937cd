package affected

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/problem"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/fleetstate"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// incidentOf is the open incident a server or its box is in, if any.
func incidentOf(st *fleetstate.State, server, box string) *fleetstate.Incident {
	for i := range st.Incidents {
		inc := &st.Incidents[i]
		if slices.Contains(inc.Down, server) || slices.Contains(inc.Boxes, box) {
			return inc
		}
	}
	return nil
}

// Kind is which service of a customer's name a match is for.
type Kind string

// The kinds of service.
const (
	KindWeb  Kind = "web"  // the name's own addresses: its site
	KindMail Kind = "mail" // its MX hosts' addresses: its mail
)

// Match is one configured server that serves a customer's name.
type Match struct {
	Kind     Kind                 `json:"kind"`
	Host     string               `json:"host"`    // the customer's name, or its MX host
	Address  string               `json:"address"` // the address they share
	Server   string               `json:"server"`
	Box      string               `json:"box"`
	BoxName  string               `json:"box_name"`
	Role     string               `json:"role,omitempty"`
	State    events.ServerState   `json:"state"`
	BoxState events.BoxState      `json:"box_state"`
	Incident *fleetstate.Incident `json:"incident,omitempty"`
}

// Troubled reports whether the customer feels or may feel an outage
// through this server: it or its box is down, or an incident is open on it.
func (m *Match) Troubled() bool {
	return m.Incident != nil || m.State == events.StateDown || m.BoxState == events.BoxDown || m.BoxState == events.BoxDegraded
}

// Answer is the whole answer about one name.
type Answer struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`        // what the name resolves to
	CNAMEs    []string `json:"cnames,omitempty"` // the names followed to get there
	MX        []string `json:"mx,omitempty"`     // its mail hosts, most preferred first
	Matches   []Match  `json:"matches"`
	// Foreign is, per host (the name or an MX host), its addresses that
	// no configured server has.
	Foreign map[string][]string `json:"foreign,omitempty"`
	// Unresolved is the servers whose check host could not be resolved,
	// with why: they could not be matched.
	Unresolved map[string]string `json:"unresolved,omitempty"`
	// Verdict is "yes" when a matched server is in trouble, "no" when
	// every matched one is fine, "not ours" when none matched.
	Verdict string   `json:"verdict"`
	Summary []string `json:"summary"` // the answer in sentences, for a person
}

// Verdicts.
const (
	VerdictYes     = "yes"
	VerdictNo      = "no"
	VerdictNotOurs = "not ours"
)

// resolveWorkers bounds the lookups of the servers' check hosts at once.
const resolveWorkers = 8

// Check answers for name, as st says things stand now.
func Check(ctx context.Context, r *Resolver, cfg *config.Config, name string, st fleetstate.State) (*Answer, error) {
	name = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	if name == "" || strings.ContainsAny(name, " /:@") && !isAddr(name) {
		return nil, problem.Errorf(problem.Invalid, "%q is not a host or domain name", name)
	}
	a := &Answer{Name: name, Foreign: map[string][]string{}, Unresolved: map[string]string{}}
	addrs, cnames, err := r.Addrs(ctx, name)
	if err != nil && !errors.Is(err, errNoSuchName) {
		return nil, problem.Errorf(problem.Upstream, "look up %s: %w", name, err)
	}
	if errors.Is(err, errNoSuchName) {
		return nil, problem.Errorf(problem.NotFound, "%s does not exist in the DNS", name)
	}
	a.CNAMEs = cnames
	for _, ad := range addrs {
		a.Addresses = append(a.Addresses, ad.String())
	}
	mxAddrs := map[string][]netip.Addr{}
	if !isAddr(name) {
		if a.MX, err = r.MX(ctx, name); err != nil {
			return nil, problem.Errorf(problem.Upstream, "look up the mail hosts of %s: %w", name, err)
		}
		for _, h := range a.MX {
			ads, _, err := r.Addrs(ctx, h)
			if err != nil {
				return nil, problem.Errorf(problem.Upstream, "mail host %s of %s: %w", h, name, err)
			}
			mxAddrs[h] = ads
		}
	}
	if len(addrs) == 0 && len(a.MX) == 0 {
		return nil, problem.Errorf(problem.NotFound, "%s has no address and no mail host", name)
	}

	owners := serversByAddr(ctx, r, cfg, a.Unresolved)
	match := func(kind Kind, host string, ads []netip.Addr) {
		for _, ad := range ads {
			servers := owners[ad]
			if len(servers) == 0 {
				a.Foreign[host] = append(a.Foreign[host], ad.String())
				continue
			}
			for _, t := range servers {
				m := Match{Kind: kind, Host: host, Address: ad.String(), Server: t.Server.ID, Box: t.Box.ID, BoxName: t.Box.Name,
					Role: cfg.RoleLabel(t.Box), State: events.StateUnknown, BoxState: st.Boxes[t.Box.ID]}
				if s, ok := st.Servers[t.Server.ID]; ok {
					m.State = s
				} else if !t.Server.Serving() {
					m.State = events.StateNotInService
				}
				if m.BoxState == "" {
					m.BoxState = events.BoxOperational
				}
				m.Incident = incidentOf(&st, t.Server.ID, t.Box.ID)
				if !slices.ContainsFunc(a.Matches, func(x Match) bool { return x.Kind == m.Kind && x.Server == m.Server }) {
					a.Matches = append(a.Matches, m)
				}
			}
		}
	}
	match(KindWeb, name, addrs)
	for _, h := range a.MX {
		match(KindMail, h, mxAddrs[h])
	}
	a.Verdict = VerdictNotOurs
	for i := range a.Matches {
		if a.Matches[i].Troubled() {
			a.Verdict = VerdictYes
			break
		}
		a.Verdict = VerdictNo
	}
	a.Summary = a.summarise(st.AsOf)
	return a, nil
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil
}

// target is one configured server with its box.
type target struct {
	Box    *config.Box
	Server *config.Server
}

// serversByAddr resolves every configured server's check host, a few at
// a time, and says which servers each address belongs to. Hosts that do
// not resolve are noted in unresolved.
func serversByAddr(ctx context.Context, r *Resolver, cfg *config.Config, unresolved map[string]string) map[netip.Addr][]target {
	var targets []target
	for i := range cfg.Boxes {
		b := &cfg.Boxes[i]
		for j := range b.Servers {
			targets = append(targets, target{Box: b, Server: &b.Servers[j]})
		}
	}
	type result struct {
		t     target
		addrs []netip.Addr
		err   error
	}
	jobs := make(chan target)
	results := make(chan result)
	var wg sync.WaitGroup
	for range min(resolveWorkers, len(targets)) {
		wg.Go(func() {
			for t := range jobs {
				host, err := checkHost(t.Server.Check)
				var addrs []netip.Addr
				if err == nil {
					addrs, _, err = r.Addrs(ctx, host)
				}
				results <- result{t, addrs, err}
			}
		})
	}
	go func() {
		defer close(jobs)
		for _, t := range targets {
			select {
			case jobs <- t:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	owners := map[netip.Addr][]target{}
	for res := range results {
		if res.err != nil {
			unresolved[res.t.Server.ID] = res.err.Error()
			continue
		}
		for _, ad := range res.addrs {
			owners[ad] = append(owners[ad], res.t)
		}
	}
	for _, list := range owners {
		slices.SortFunc(list, func(a, b target) int { return strings.Compare(a.Server.ID, b.Server.ID) })
	}
	return owners
}

// checkHost is the host a check URL reaches.
func checkHost(check string) (string, error) {
	u, err := url.Parse(check)
	if err != nil {
		return "", fmt.Errorf("check %q is not a URL", check)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("check %q names no host", check)
	}
	return u.Hostname(), nil
}

// summarise says the answer in sentences, one per kind of service and
// box: "yes: mail for example.com is handled by mx1 and mx2 (box Incoming
// mail), which is DOWN, incident 20261121-ab12cd since 02:14 UTC".
func (a *Answer) summarise(now time.Time) []string {
	var out []string
	for _, kind := range []Kind{KindWeb, KindMail} {
		var boxes []string
		byBox := map[string][]Match{}
		for _, m := range a.Matches {
			if m.Kind != kind {
				continue
			}
			if _, ok := byBox[m.Box]; !ok {
				boxes = append(boxes, m.Box)
			}
			byBox[m.Box] = append(byBox[m.Box], m)
		}
		for _, box := range boxes {
			out = append(out, sentence(a.Name, kind, byBox[box], now))
		}
	}
	if f := a.Foreign[a.Name]; len(f) > 0 {
		out = append(out, fmt.Sprintf("not ours: %s resolves to %s, which no configured server has", a.Name, list(f)))
	}
	for _, h := range a.MX {
		if f := a.Foreign[h]; len(f) > 0 {
			out = append(out, fmt.Sprintf("not ours: mail for %s goes to %s (%s), which no configured server has", a.Name, h, list(f)))
		}
	}
	if len(a.Addresses) == 0 {
		out = append(out, fmt.Sprintf("%s has no address of its own (no site)", a.Name))
	}
	if len(a.MX) == 0 && !isAddr(a.Name) {
		out = append(out, fmt.Sprintf("%s has no MX records (no mail)", a.Name))
	}
	if n := len(a.Unresolved); n > 0 {
		ids := make([]string, 0, n)
		for id := range a.Unresolved {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		msg := "note: the check hosts of %d servers did not resolve, so they could not be matched: %s"
		if n == 1 {
			msg = "note: the check host of %d server did not resolve, so it could not be matched: %s"
		}
		out = append(out, fmt.Sprintf(msg, n, list(ids)))
	}
	return out
}

func sentence(name string, kind Kind, ms []Match, now time.Time) string {
	var servers []string
	var inc *fleetstate.Incident
	troubled := false
	for i := range ms {
		servers = append(servers, ms[i].Server)
		troubled = troubled || ms[i].Troubled()
		if inc == nil {
			inc = ms[i].Incident
		}
	}
	m := ms[0]
	verdict := VerdictNo
	if troubled {
		verdict = VerdictYes
	}
	what := fmt.Sprintf("%s is served by", name)
	if kind == KindMail {
		what = fmt.Sprintf("mail for %s is handled by", name)
	}
	s := fmt.Sprintf("%s: %s %s (box %s), which is %s", verdict, what, list(servers), m.BoxName, boxWords(m.BoxState))
	for i := range ms {
		if ms[i].State == events.StateDown && m.BoxState != events.BoxDown {
			s += fmt.Sprintf("; %s itself is down", ms[i].Server)
		}
	}
	if inc != nil {
		s += fmt.Sprintf(", incident %s since %s (%s)", inc.ID, fleetstate.Since(inc.Since, now), inc.Status)
	}
	return s
}

func boxWords(s events.BoxState) string {
	switch s {
	case events.BoxDown:
		return "DOWN"
	case events.BoxDegraded:
		return "DEGRADED (some of its servers are down, the others still answer)"
	case events.BoxMaintenance:
		return "in maintenance"
	}
	return string(s)
}

// list joins names as a person would: "a", "a and b", "a, b and c".
func list(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
