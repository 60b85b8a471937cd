// Package rdap reads when a domain's registration expires.
//
// A domain that lapses takes every service on it down at once, web and mail
// alike, and no check of a server says why: the servers are up, only nobody
// can find them. Registries publish the expiry date by RDAP (RFC 7480, 9083),
// and IANA's bootstrap file (RFC 9224) says which registry's server to ask,
// so the date comes from the registry itself rather than from a scraped
// WHOIS text whose format differs for every TLD.
package rdap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/idna"
)

// ErrNotFound is what Expiry's error wraps when the registry answers 404:
// the domain is not registered there, and asking again will not change that
// until someone registers it. Every other error is worth retrying later.
var ErrNotFound = errors.New("domain not found")

const (
	// DefaultBootstrapURL is IANA's RDAP bootstrap file for domain names.
	DefaultBootstrapURL = "https://data.iana.org/rdap/dns.json"
	// DefaultBootstrapTTL is how long the bootstrap file is used before it
	// is fetched again: IANA changes it a few times a month at most.
	DefaultBootstrapTTL = 24 * time.Hour

	defaultTimeout = 30 * time.Second
	maxRedirects   = 3
	// maxBody bounds what is read of an RDAP answer, which comes from
	// servers nobody here controls. A real one is a few KiB.
	maxBody = 1 << 20
	// maxBootstrap bounds the bootstrap file; IANA's is well under 100 KiB.
	maxBootstrap = 4 << 20

	rdapJSON  = "application/rdap+json"
	userAgent = "Tocsin-RDAP/1"
)

// Options configures a Client; the zero value of each field takes its
// default.
type Options struct {
	// BootstrapURL is where the RFC 9224 bootstrap file for domain names is
	// fetched; DefaultBootstrapURL if empty.
	BootstrapURL string
	// HTTP makes every request. Its CheckRedirect is replaced, so that no
	// more than 3 redirects are followed; it should have a Timeout. If nil,
	// a client with a 30s timeout is used.
	HTTP *http.Client
	// Now tells the time, for the age of the cached bootstrap file;
	// time.Now if nil.
	Now func() time.Time
	// BootstrapTTL is how long the bootstrap file is cached;
	// DefaultBootstrapTTL if zero or less.
	BootstrapTTL time.Duration
}

// Client asks registries when domains expire. It caches the bootstrap file
// and is safe for concurrent use.
type Client struct {
	bootstrapURL string
	http         *http.Client
	now          func() time.Time
	ttl          time.Duration

	mu       sync.Mutex
	servers  map[string]*url.URL // suffix → base URL, from the bootstrap file
	fetched  time.Time           // when servers was fetched
	inflight *fetch              // the bootstrap fetch under way, if any
}

// fetch is one fetch of the bootstrap file, shared by every caller that
// needs it while it runs.
type fetch struct {
	done      chan struct{}
	err       error
	abandoned bool // the caller that ran it gave up, so its error is not the server's
}

// New returns a Client with the defaults filled in.
func New(opts Options) *Client {
	c := &Client{
		bootstrapURL: opts.BootstrapURL,
		now:          opts.Now,
		ttl:          opts.BootstrapTTL,
	}
	if c.bootstrapURL == "" {
		c.bootstrapURL = DefaultBootstrapURL
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.ttl <= 0 {
		c.ttl = DefaultBootstrapTTL
	}
	hc := http.Client{Timeout: defaultTimeout}
	if opts.HTTP != nil {
		hc = *opts.HTTP
	}
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects {
			return fmt.Errorf("more than %d redirects", maxRedirects)
		}
		return nil
	}
	c.http = &hc
	return c
}

// Expiry returns when the registration of domain expires, as its registry
// says, or as the registrar says when the registry's answer has no date and
// links to the registrar's RDAP server. The domain is the registered name
// (example.co.uk, not www.example.co.uk), in Unicode or ASCII; an error
// wraps ErrNotFound when the registry does not know it.
func (c *Client) Expiry(ctx context.Context, domain string) (time.Time, error) {
	name, err := Normalise(domain)
	if err != nil {
		return time.Time{}, err
	}
	servers, err := c.bootstrap(ctx)
	if err != nil {
		return time.Time{}, err
	}
	base := serverFor(servers, name)
	if base == nil {
		return time.Time{}, fmt.Errorf("no RDAP server for .%s in the IANA bootstrap", name[strings.LastIndexByte(name, '.')+1:])
	}
	reg, from, err := c.ask(ctx, base.JoinPath("domain", name), name)
	if err != nil {
		return time.Time{}, err
	}
	if !reg.Expiry.IsZero() {
		return reg.Expiry, nil
	}
	if reg.Registrar == "" {
		return time.Time{}, fmt.Errorf("no expiration date in the registration at %s", from.Host)
	}
	// A thin registry leaves the date to the registrar, and says where to
	// ask it.
	link, err := from.Parse(reg.Registrar)
	if err != nil || (link.Scheme != "https" && link.Scheme != "http") || link.Host == "" {
		return time.Time{}, fmt.Errorf("no expiration date in the registration at %s, and its registrar link is not an http(s) URL", from.Host)
	}
	reg, rfrom, err := c.ask(ctx, link, name)
	switch {
	case errors.Is(err, ErrNotFound):
		// The registry holds the domain, so a registrar that does not know
		// it says nothing about whether it is registered: not ErrNotFound.
		return time.Time{}, fmt.Errorf("no expiration date in the registration at %s, and the registrar's %s answered 404", from.Host, link.Host)
	case err != nil:
		return time.Time{}, fmt.Errorf("no expiration date in the registration at %s, asking the registrar: %w", from.Host, err)
	case reg.Expiry.IsZero():
		return time.Time{}, fmt.Errorf("no expiration date in the registration at %s, nor at the registrar's %s", from.Host, rfrom.Host)
	}
	return reg.Expiry, nil
}

// ask asks the RDAP server at u about name, and returns its answer and the
// URL that gave it, after redirects.
func (c *Client) ask(ctx context.Context, u *url.URL, name string) (registration, *url.URL, error) {
	r, err := c.get(ctx, u, rdapJSON, maxBody)
	switch {
	case err != nil:
		return registration{}, nil, err
	case r.status == http.StatusNotFound:
		return registration{}, nil, fmt.Errorf("%s answered 404: %w", r.url.Host, ErrNotFound)
	case r.status != http.StatusOK:
		return registration{}, nil, r.refused()
	}
	reg, err := parse(r.body)
	if err != nil {
		return registration{}, nil, fmt.Errorf("reading the answer of %s: %w", r.url.Host, err)
	}
	if reg.Name != "" && !strings.EqualFold(strings.TrimSuffix(reg.Name, "."), name) {
		return registration{}, nil, fmt.Errorf("%s answered about another domain than %s", r.url.Host, name)
	}
	return reg, r.url, nil
}

// bootstrap returns the RDAP servers of the bootstrap file, fetching it if
// the cached copy is missing or older than the TTL. Callers that arrive
// while it is being fetched wait for that fetch rather than start their own.
func (c *Client) bootstrap(ctx context.Context) (map[string]*url.URL, error) {
	for {
		c.mu.Lock()
		if c.servers != nil && c.now().Sub(c.fetched) < c.ttl {
			servers := c.servers
			c.mu.Unlock()
			return servers, nil
		}
		f := c.inflight
		if f == nil {
			f = &fetch{done: make(chan struct{})}
			c.inflight = f
			c.mu.Unlock()

			servers, err := c.fetchBootstrap(ctx)
			c.mu.Lock()
			if err == nil {
				c.servers, c.fetched = servers, c.now()
			}
			f.err, f.abandoned = err, ctx.Err() != nil
			c.inflight = nil
			c.mu.Unlock()
			close(f.done)
			return servers, err
		}
		c.mu.Unlock()

		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the RDAP bootstrap: %w", ctx.Err())
		}
		if f.err == nil {
			c.mu.Lock()
			servers := c.servers
			c.mu.Unlock()
			return servers, nil
		}
		if !f.abandoned || ctx.Err() != nil {
			return nil, f.err
		}
		// The caller that fetched it gave up; this one has not, so try
		// again.
	}
}

// fetchBootstrap fetches and reads the bootstrap file.
func (c *Client) fetchBootstrap(ctx context.Context) (map[string]*url.URL, error) {
	u, err := url.Parse(c.bootstrapURL)
	if err != nil {
		return nil, fmt.Errorf("RDAP bootstrap URL: %w", err)
	}
	r, err := c.get(ctx, u, "application/json", maxBootstrap)
	if err == nil && r.status != http.StatusOK {
		// Not ErrNotFound, even for a 404: the domain was never asked about.
		err = r.refused()
	}
	if err != nil {
		return nil, fmt.Errorf("reading the RDAP bootstrap: %w", err)
	}
	servers, err := parseBootstrap(r.body)
	if err != nil {
		return nil, fmt.Errorf("reading the RDAP bootstrap from %s: %w", r.url.Host, err)
	}
	return servers, nil
}

// parseBootstrap reads an RFC 9224 bootstrap file into a map from each
// suffix to its server's base URL, an https one where the file lists one.
func parseBootstrap(body []byte) (map[string]*url.URL, error) {
	var file struct {
		Services [][][]string `json:"services"`
	}
	if err := json.Unmarshal(body, &file); err != nil {
		return nil, fmt.Errorf("not a bootstrap file: %w", err)
	}
	servers := map[string]*url.URL{}
	for _, s := range file.Services {
		if len(s) < 2 {
			continue
		}
		var base *url.URL
		for _, raw := range s[1] {
			u, err := url.Parse(raw)
			if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
				continue
			}
			if base == nil || (base.Scheme != "https" && u.Scheme == "https") {
				base = u
			}
		}
		if base == nil {
			continue
		}
		for _, suffix := range s[0] {
			suffix = strings.TrimSuffix(strings.ToLower(suffix), ".")
			if _, dup := servers[suffix]; !dup && suffix != "" {
				servers[suffix] = base
			}
		}
	}
	if len(servers) == 0 {
		// Caching an empty file would make every domain unknown for a day.
		return nil, errors.New("the file lists no RDAP servers")
	}
	return servers, nil
}

// serverFor returns the base URL for the longest suffix of name that servers
// lists, or nil.
func serverFor(servers map[string]*url.URL, name string) *url.URL {
	for s := name; ; {
		if base, ok := servers[s]; ok {
			return base
		}
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return nil
		}
		s = s[i+1:]
	}
}

// reply is an HTTP answer.
type reply struct {
	url    *url.URL // the URL that answered, after redirects
	status int
	body   []byte // read only for a 200
}

// refused says that the server did not answer 200.
func (r reply) refused() error {
	return fmt.Errorf("%s answered %d: %s", r.url.Host, r.status, strings.ToLower(http.StatusText(r.status)))
}

// get fetches u and reads at most limit bytes of a 200's body; more is an
// error.
func (c *Client) get(ctx context.Context, u *url.URL, accept string, limit int64) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return reply{}, fmt.Errorf("asking %s: %w", u.Host, err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return reply{}, failed(ctx, u.Host, err)
	}
	defer resp.Body.Close()
	r := reply{url: resp.Request.URL, status: resp.StatusCode}
	if r.status != http.StatusOK {
		return r, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return reply{}, failed(ctx, r.url.Host, err)
	}
	if int64(len(body)) > limit {
		return reply{}, fmt.Errorf("%s sent an answer larger than %d MiB", r.url.Host, limit>>20)
	}
	r.body = body
	return r, nil
}

// failed says what went wrong asking host, without the URL that net/http
// puts in its errors and that the caller already knows.
func failed(ctx context.Context, host string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s did not answer in time: %w", host, ctx.Err())
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%s did not answer in time: %w", host, err)
	}
	return fmt.Errorf("asking %s: %w", host, err)
}

// registration is what an RDAP domain answer says that matters here.
type registration struct {
	Name      string    // ldhName, as the server spelled it; empty if absent
	Expiry    time.Time // the expiration event, in UTC; zero if absent
	Registrar string    // the href of the registrar's RDAP record; empty if absent
}

// domainJSON is the part of an RDAP domain object (RFC 9083) read here.
// Its types are named because encoding/json's errors name them.
type domainJSON struct {
	ObjectClassName string      `json:"objectClassName"`
	LDHName         string      `json:"ldhName"`
	Events          []eventJSON `json:"events"`
	Links           []linkJSON  `json:"links"`
}

type eventJSON struct {
	Action string `json:"eventAction"`
	Date   string `json:"eventDate"`
}

type linkJSON struct {
	Rel  string `json:"rel"`
	Type string `json:"type"`
	Href string `json:"href"`
}

// parse reads an RDAP domain answer (RFC 9083): the expiration event, and
// the link to the registrar's record that a thin registry gives instead.
func parse(body []byte) (registration, error) {
	var d domainJSON
	if err := json.Unmarshal(body, &d); err != nil {
		return registration{}, fmt.Errorf("not RDAP JSON: %w", err)
	}
	if d.ObjectClassName != "" && d.ObjectClassName != "domain" {
		return registration{}, fmt.Errorf("an answer about a %.20q, not a domain", d.ObjectClassName)
	}
	reg := registration{Name: d.LDHName}
	for _, e := range d.Events {
		if e.Action != "expiration" {
			continue
		}
		t, err := time.Parse(time.RFC3339, e.Date)
		if err != nil {
			return registration{}, fmt.Errorf("expiration date %.40q is not an RFC 3339 time", e.Date)
		}
		reg.Expiry = t.UTC()
		break
	}
	for _, l := range d.Links {
		if mt, _, err := mime.ParseMediaType(l.Type); l.Rel == "related" && err == nil && mt == rdapJSON && l.Href != "" {
			reg.Registrar = l.Href
			break
		}
	}
	return reg, nil
}

// Normalise turns domain into the ASCII, lower-case name a registry knows,
// or says why it cannot be a registered domain.
func Normalise(domain string) (string, error) {
	name := strings.TrimSuffix(strings.ToLower(domain), ".")
	p := idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false), idna.VerifyDNSLength(true))
	ascii, err := p.ToASCII(name)
	if err != nil {
		return "", fmt.Errorf("%q is not a domain name: %w", domain, err)
	}
	labels := strings.Split(ascii, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("%q is not a registered domain name: it has no dot", domain)
	}
	for _, l := range labels {
		if !ldh(l) {
			return "", fmt.Errorf("%q is not a domain name: %q is not a hostname label", domain, l)
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", fmt.Errorf("%q is not a domain name: it ends in a number", domain)
	}
	return ascii, nil
}

// ldh reports whether l is a hostname label: letters, digits and inner
// hyphens, 1 to 63 of them. The name goes into a URL path, so this is
// checked here rather than trusted to the IDNA mapping.
func ldh(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		switch c := l[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		default:
			return false
		}
	}
	return true
}
