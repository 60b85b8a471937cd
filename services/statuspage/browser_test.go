package statuspage

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/browsertest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestInABrowser runs the page in headless Chromium: the boxes and dots
// show, a dot turns red without a reload when a server goes down, the page
// works with JavaScript off and on a phone, and the banner script shows its
// message on a page from another origin.
func TestInABrowser(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a browser")
	}
	br := browsertest.Start(t)
	s := startSite(t)
	now := time.Now().UTC()
	for _, id := range []string{"mx1", "mx2", "web1"} {
		s.put(t, events.BucketServers, id, events.ServerRecord{ID: id, State: events.StateUp, Since: now.Add(-37 * 24 * time.Hour)})
	}
	wait.For(t, "servers up", func() bool {
		page, _ := s.get(t, "/")
		return strings.Count(page, `data-dot="online"`) == 3
	})
	web1 := "#c-" + componentID("server", "web1")

	t.Run("dots, and a dot turning red live", func(t *testing.T) {
		p := br.NewPage(t)
		ctx := context.Background()
		p.Navigate(ctx, s.url+"/")
		if n := p.Count(ctx, ".box"); n != 2 {
			t.Errorf("%d boxes, want 2", n)
		}
		if n := p.Count(ctx, ".dot.online"); n < 3 {
			t.Errorf("%d green dots, want at least 3", n)
		}
		if got := p.Text(ctx, web1+" [data-role=text]"); got != "Online" {
			t.Errorf("web1 reads %q", got)
		}
		green := p.Style(ctx, web1+" .dot", "background-color")
		// The roles' colours come from the one style sheet the page's
		// policy allows.
		if got := p.Style(ctx, "#c-"+componentID("box", "mx"), "border-top-color"); got != "rgb(46, 134, 222)" {
			t.Errorf("the mail box's border is %s, want its role's colour #2e86de", got)
		}
		// Mark the page: a reload would lose the mark.
		p.Eval(ctx, `window.notReloaded = true`, nil)
		time.Sleep(300 * time.Millisecond) // the EventSource is connected
		changed := time.Now()
		s.put(t, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateDown, Since: time.Now()})
		p.WaitFor(ctx, fmt.Sprintf(`document.querySelector(%q).getAttribute("data-dot") === "unavailable"`, web1), 5*time.Second)
		t.Logf("the dot turned red %s after the state changed", time.Since(changed).Round(time.Millisecond))
		var kept bool
		p.Eval(ctx, `window.notReloaded === true`, &kept)
		if !kept {
			t.Error("the page reloaded to show the change")
		}
		if red := p.Style(ctx, web1+" .dot", "background-color"); red == green {
			t.Errorf("the dot's colour stayed %s", red)
		}
		if got := p.Text(ctx, web1+" [data-role=text]"); got != "Unavailable" {
			t.Errorf("web1 reads %q: the state must be said in words too", got)
		}
		if errs := p.Errors(); len(errs) > 0 {
			t.Errorf("errors on the page: %v", errs)
		}
	})

	t.Run("without JavaScript, on a phone, in the dark", func(t *testing.T) {
		p := br.NewPage(t)
		ctx := context.Background()
		p.DisableJavaScript(ctx)
		p.SetViewport(ctx, browsertest.Phone)
		p.SetColorScheme(ctx, "dark")
		p.Navigate(ctx, s.url+"/")
		if n := p.Count(ctx, ".dot"); n < 4 {
			t.Errorf("%d dots without JavaScript", n)
		}
		var overflow bool
		p.Eval(ctx, `document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow)
		if overflow {
			t.Error("the page is wider than a phone's screen")
		}
		if bg := p.Style(ctx, "body", "background-color"); bg == "rgb(255, 255, 255)" {
			t.Error("no dark mode")
		}
	})

	t.Run("the banner on a page from another origin", func(t *testing.T) {
		s.put(t, events.BucketBanner, events.BannerKey, events.Banner{On: true, Message: "We are experiencing problems with Incoming mail.", Link: "https://status.example.net", Since: time.Now()})
		host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `<!DOCTYPE html><html><head><title>Hosting</title></head><body><h1>Example Hosting</h1><p id="content">Web hosting for everyone.</p><script src="%s/banner.js" async></script></body></html>`, s.url)
		}))
		defer host.Close()
		p := br.NewPage(t)
		ctx := context.Background()
		p.Navigate(ctx, host.URL+"/")
		p.WaitFor(ctx, `!!document.getElementById("tocsin-banner")`, 5*time.Second)
		if got := p.Text(ctx, "#tocsin-banner"); !strings.Contains(got, "problems with Incoming mail") || !strings.Contains(got, "Status page") {
			t.Errorf("banner reads %q", got)
		}
		if got := p.Text(ctx, "#content"); got != "Web hosting for everyone." {
			t.Errorf("the host page's own content: %q", got)
		}
		p.Eval(ctx, `document.querySelector("#tocsin-banner button").click()`, nil)
		p.WaitFor(ctx, `!document.getElementById("tocsin-banner")`, 2*time.Second)
		if errs := p.Errors(); len(errs) > 0 {
			t.Errorf("errors on the host page: %v", errs)
		}
	})

	t.Run("the host page is unharmed when the status page is gone", func(t *testing.T) {
		host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `<!DOCTYPE html><html><body><p id="content">Still here.</p><script src="http://127.0.0.1:1/banner.js" async></script></body></html>`)
		}))
		defer host.Close()
		p := br.NewPage(t)
		ctx := context.Background()
		p.Navigate(ctx, host.URL+"/")
		if got := p.Text(ctx, "#content"); got != "Still here." {
			t.Errorf("host page: %q", got)
		}
	})
}
