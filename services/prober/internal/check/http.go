package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// httpCheck fetches the URL as a visitor would: a fresh connection, at most
// 5 redirects, the certificate verified, and some of the body read, because
// a server that sends headers and then stalls is not up.
func httpCheck(ctx context.Context, r *Runner, u *url.URL, s Spec) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return failure("bad check URL: " + err.Error())
	}
	req.Header.Set("User-Agent", "Tocsin-Check/1")
	resp, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	switch {
	case s.ExpectStatus != 0 && resp.StatusCode != s.ExpectStatus:
		return failure(fmt.Sprintf("expected %d, got %d %s", s.ExpectStatus, resp.StatusCode, http.StatusText(resp.StatusCode)))
	case s.ExpectStatus == 0 && resp.StatusCode >= 400:
		return failure(fmt.Sprintf("expected a 2xx or 3xx status, got %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
	case s.Keyword != "" && !bytes.Contains(body, []byte(s.Keyword)):
		return failure(fmt.Sprintf("keyword %q not found in the page", s.Keyword))
	}
	if resp.TLS != nil {
		return r.checkExpiry(*resp.TLS, s.CertWarnDays)
	}
	return nil
}

func newHTTPClient(r *Runner) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             nil, // a check measures the server, not a proxy in between
			DialContext:       r.dialer.DialContext,
			TLSClientConfig:   r.tlsConfig(""),
			DisableKeepAlives: true, // every check opens its own connection
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			return nil
		},
	}
}
