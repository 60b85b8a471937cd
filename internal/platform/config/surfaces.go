package config

import (
	"net/netip"
	"strings"
)

// minIDKey is the shortest key for public incident ids: shorter ones can
// be guessed, and with the key the ids give the codes away.
const minIDKey = 16

// surfaces checks what bounds the HTTP servers the internet reaches: the
// proxies trusted to name the client, the stream limits, the id key.
func (v *validator) surfaces(c *Config) {
	sp := &c.Statuspage
	sp.Proxies = v.proxies(p("statuspage", "trusted_proxies"), sp.TrustedProxies)
	c.Notify.Proxies = v.proxies(p("notify", "trusted_proxies"), c.Notify.TrustedProxies)
	if sp.MaxStreams < 0 {
		v.at(p("statuspage", "max_streams"), "max_streams must not be negative")
	}
	switch {
	case sp.MaxStreamsPerClient < 0:
		v.at(p("statuspage", "max_streams_per_client"), "max_streams_per_client must not be negative")
	case sp.MaxStreams > 0 && sp.MaxStreamsPerClient > sp.MaxStreams:
		v.at(p("statuspage", "max_streams_per_client"), "max_streams_per_client (%d) must not be more than max_streams (%d)", sp.MaxStreamsPerClient, sp.MaxStreams)
	}
	if sp.IDKeyEnv != "" || sp.IDKeyFile != "" {
		sp.IDKey = v.secret(usedBy("statuspage"), p("statuspage"), "id_key", sp.IDKeyEnv, sp.IDKeyFile, true)
		if sp.IDKey.IsSet() && len(sp.IDKey.Reveal()) < minIDKey {
			key := "id_key_env"
			if sp.IDKeyFile != "" {
				key = "id_key_file"
			}
			v.at(p("statuspage", key), "id_key is too short: give at least %d random characters", minIDKey)
		}
	}
}

// proxies parses a list of trusted proxies: addresses, or CIDR prefixes
// for a pool of them.
func (v *validator) proxies(path []any, list []string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range list {
		s = strings.TrimSpace(s)
		pr, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				v.at(append(path, i), "trusted proxy %q is not an address or a CIDR prefix like 10.0.0.0/8", s)
				continue
			}
			pr = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if pr.Bits() == 0 {
			// 0.0.0.0/0 would let any client name any address, and so
			// escape every limit by naming a new one each time.
			v.at(append(path, i), "trusted proxy %q is everyone: name the proxies themselves", s)
			continue
		}
		out = append(out, pr.Masked())
	}
	return out
}
