package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// serve serves each page at its path, HTML unless the path ends in .js,
// on loopback until the test ends.
func serve(t *testing.T, pages map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, ".js") {
			w.Header().Set("Content-Type", "text/javascript")
		} else {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		}
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fatal is what fatalRecorder panics with, to stop the helper as t.Fatal
// would stop the test.
type fatal struct{ msg string }

// fatalRecorder is a testing.TB whose Fatalf records the failure instead
// of failing the test, so that a test can check the harness's own failure
// messages.
type fatalRecorder struct{ testing.TB }

func (fatalRecorder) Helper() {}

func (fatalRecorder) Fatalf(format string, args ...any) {
	panic(fatal{fmt.Sprintf(format, args...)})
}

// failure runs f and returns the message it failed the test with.
func failure(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("the helper did not fail the test")
		}
		fe, ok := r.(fatal)
		if !ok {
			panic(r)
		}
		msg = fe.msg
	}()
	f()
	return ""
}

func TestBrowser(t *testing.T) {
	b := Start(t)
	ctx := t.Context()

	t.Run("reading a page", func(t *testing.T) {
		p := b.NewPage(t)
		srv := serve(t, map[string]string{"/": `<!doctype html><title>Status</title>
<h1 id="title">All systems <span hidden>secretly</span> operational</h1>
<ul><li class="server" data-dot="online">web</li><li class="server" data-dot="unavailable">mail</li></ul>`})
		p.Navigate(ctx, srv.URL+"/")
		if got, want := p.Text(ctx, "#title"), "All systems operational"; got != want {
			t.Errorf("Text = %q, want %q", got, want)
		}
		if got, want := p.Count(ctx, "li.server"), 2; got != want {
			t.Errorf("Count = %d, want %d", got, want)
		}
		if got, want := p.Count(ctx, "li.nothing"), 0; got != want {
			t.Errorf("Count of nothing = %d, want %d", got, want)
		}
		if got, ok := p.Attr(ctx, "li.server:last-child", "data-dot"); got != "unavailable" || !ok {
			t.Errorf("Attr = %q, %v, want unavailable, true", got, ok)
		}
		if got, ok := p.Attr(ctx, "li.server", "title"); got != "" || ok {
			t.Errorf("Attr of a missing attribute = %q, %v, want \"\", false", got, ok)
		}
		var title string
		p.Eval(ctx, `document.title`, &title)
		if title != "Status" {
			t.Errorf("Eval(document.title) = %q, want Status", title)
		}
		if !p.Visible(ctx, "#title") || p.Visible(ctx, "#title span") || p.Visible(ctx, "#nothing") {
			t.Error("Visible: want only #title visible")
		}
		if png := p.Screenshot(ctx); !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Errorf("Screenshot starts %q, want a PNG", png[:min(len(png), 8)])
		}
		if b.Version() == "" {
			t.Error("Version is empty")
		}
	})

	t.Run("every loopback address", func(t *testing.T) {
		// The resolver rules that keep the browser on this machine must
		// still let it reach each way of naming loopback.
		p := b.NewPage(t)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `<!doctype html><p id="host"></p><script>document.getElementById("host").textContent = location.hostname</script>`)
		}))
		l, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		srv.Listener = l
		srv.Start()
		t.Cleanup(srv.Close)
		_, port, _ := net.SplitHostPort(l.Addr().String())
		v4 := serve(t, map[string]string{"/": `<!doctype html><p id="host">127.0.0.1</p>`})
		for _, u := range []string{"http://[::1]:" + port + "/", "http://localhost:" + port + "/", v4.URL + "/"} {
			p.Navigate(ctx, u)
			if got := p.Text(ctx, "#host"); got == "" {
				t.Errorf("%s: the page did not load", u)
			}
		}
	})

	t.Run("timer changes a dot", func(t *testing.T) {
		p := b.NewPage(t)
		srv := serve(t, map[string]string{"/": `<!doctype html>
<style>.dot{display:inline-block;width:1em;height:1em;background:#dc2626}.dot.online{background:#16a34a}</style>
<span id="web" class="dot"></span>
<script>setTimeout(() => document.getElementById("web").classList.add("online"), 200)</script>`})
		p.Navigate(ctx, srv.URL+"/")
		if got, want := p.Style(ctx, "#web", "background-color"), "rgb(220, 38, 38)"; got != want {
			t.Errorf("before the timer the dot is %s, want %s", got, want)
		}
		start := time.Now()
		p.WaitFor(ctx, `getComputedStyle(document.getElementById("web")).backgroundColor === "rgb(22, 163, 74)"`, 5*time.Second)
		if waited := time.Since(start); waited > 2*time.Second {
			t.Errorf("WaitFor took %s for a 200 ms timer", waited)
		}
		if errs := p.Errors(); len(errs) > 0 {
			t.Errorf("Errors = %q, want none", errs)
		}
	})

	t.Run("server-sent events update the page", func(t *testing.T) {
		p := b.NewPage(t)
		send := make(chan string)
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `<!doctype html><p id="state">waiting</p>
<script>
new EventSource("/events").onmessage = (e) => { document.getElementById("state").textContent = e.data; };
</script>`)
		})
		mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-store")
			rc := http.NewResponseController(w)
			fmt.Fprint(w, ": connected\n\n")
			rc.Flush()
			for {
				select {
				case <-r.Context().Done():
					return
				case msg := <-send:
					fmt.Fprintf(w, "data: %s\n\n", msg)
					rc.Flush()
				}
			}
		})
		srv := httptest.NewUnstartedServer(mux)
		srv.Start()
		// The stream stays open until the page closes, which Close would
		// wait for: the page is closed first, in the cleanups after this.
		t.Cleanup(func() {
			srv.CloseClientConnections()
			srv.Close()
		})

		p.Navigate(ctx, srv.URL+"/")
		p.Eval(ctx, `window.sameDocument = true`, nil)
		for _, msg := range []string{"web unavailable", "web online"} {
			select {
			case send <- msg:
			case <-time.After(5 * time.Second):
				t.Fatal("the page did not connect to /events")
			}
			p.WaitFor(ctx, fmt.Sprintf(`document.getElementById("state").textContent === %q`, msg), 5*time.Second)
		}
		var same bool
		p.Eval(ctx, `window.sameDocument === true`, &same)
		if !same {
			t.Error("the page reloaded; want it updated in place")
		}
	})

	t.Run("waiting across a reload", func(t *testing.T) {
		p := b.NewPage(t)
		// As the status page reloads itself when an incident changes.
		srv := serve(t, map[string]string{"/": `<!doctype html><p id="n"></p><script>
const n = Number(sessionStorage.getItem("n") || 0) + 1;
sessionStorage.setItem("n", n);
document.getElementById("n").textContent = n;
if (n < 3) setTimeout(() => location.reload(), 100);
</script>`})
		p.Navigate(ctx, srv.URL+"/")
		p.WaitFor(ctx, `document.getElementById("n").textContent === "3"`, 5*time.Second)
		if errs := p.Errors(); len(errs) > 0 {
			t.Errorf("Errors = %q, want none", errs)
		}
	})

	t.Run("script from another origin", func(t *testing.T) {
		p := b.NewPage(t)
		// As banner.js is included by the pages a status page's operator
		// hosts elsewhere.
		banner := serve(t, map[string]string{"/banner.js": `(() => {
  const d = document.createElement("div");
  d.id = "tocsin-banner";
  d.textContent = "Mail is unavailable";
  document.body.prepend(d);
})();`})
		host := serve(t, map[string]string{"/": `<!doctype html><body><p>Our shop</p>
<script src="` + banner.URL + `/banner.js" async></script>`})
		if host.URL == banner.URL {
			t.Fatal("both servers have one origin")
		}
		p.Navigate(ctx, host.URL+"/")
		p.WaitFor(ctx, `document.getElementById("tocsin-banner") !== null`, 5*time.Second)
		if got, want := p.Text(ctx, "#tocsin-banner"), "Mail is unavailable"; got != want {
			t.Errorf("banner says %q, want %q", got, want)
		}
		var origin string
		p.Eval(ctx, `location.origin`, &origin)
		if origin != host.URL {
			t.Errorf("page origin %s, want %s", origin, host.URL)
		}
	})

	t.Run("dark mode", func(t *testing.T) {
		p := b.NewPage(t)
		srv := serve(t, map[string]string{"/": `<!doctype html>
<style>body{background:#fff}@media (prefers-color-scheme: dark){body{background:#111}}</style><p>hi</p>`})
		p.Navigate(ctx, srv.URL+"/")
		dark := func() bool {
			var v bool
			p.Eval(ctx, `matchMedia("(prefers-color-scheme: dark)").matches`, &v)
			return v
		}
		if dark() {
			t.Fatal("dark before emulation; want the browser's light default")
		}
		p.SetColorScheme(ctx, "dark")
		if !dark() {
			t.Error("matchMedia does not see dark after SetColorScheme(dark)")
		}
		if got, want := p.Style(ctx, "body", "background-color"), "rgb(17, 17, 17)"; got != want {
			t.Errorf("dark background %s, want %s", got, want)
		}
		p.SetColorScheme(ctx, "light")
		if dark() {
			t.Error("matchMedia sees dark after SetColorScheme(light)")
		}
	})

	t.Run("phone viewport", func(t *testing.T) {
		p := b.NewPage(t)
		srv := serve(t, map[string]string{"/": `<!doctype html>
<meta name="viewport" content="width=device-width, initial-scale=1"><p>hi</p>`})
		p.Navigate(ctx, srv.URL+"/")
		p.SetViewport(ctx, Phone)
		var got struct {
			Width  int  `json:"width"`
			Narrow bool `json:"narrow"`
			Touch  bool `json:"touch"`
		}
		p.Eval(ctx, `({width: innerWidth, narrow: matchMedia("(max-width: 600px)").matches, touch: navigator.maxTouchPoints > 0})`, &got)
		if got.Width != Phone.Width || !got.Narrow || !got.Touch {
			t.Errorf("on a phone the page sees %+v, want width %d, narrow, touch", got, Phone.Width)
		}
		p.SetViewport(ctx, Desktop)
		p.Eval(ctx, `({width: innerWidth, narrow: matchMedia("(max-width: 600px)").matches})`, &got)
		if got.Width != Desktop.Width || got.Narrow {
			t.Errorf("on a desktop the page sees %+v, want width %d, not narrow", got, Desktop.Width)
		}
	})

	t.Run("JavaScript disabled", func(t *testing.T) {
		page := `<!doctype html><body>
<noscript><p id="ns">Updates every minute with JavaScript on.</p></noscript>
<script>document.body.dataset.js = "ran";</script>`
		srv := serve(t, map[string]string{"/": page})

		p := b.NewPage(t)
		p.DisableJavaScript(ctx)
		p.Navigate(ctx, srv.URL+"/")
		if !p.Visible(ctx, "#ns") {
			t.Error("with JavaScript off <noscript> is not shown")
		}
		if got, want := p.Text(ctx, "#ns"), "Updates every minute with JavaScript on."; got != want {
			t.Errorf("noscript says %q, want %q", got, want)
		}
		var ran bool
		p.Eval(ctx, `document.body.dataset.js === "ran"`, &ran)
		if ran {
			t.Error("with JavaScript off the page's script ran")
		}

		// The same page in a page with JavaScript on, to show the
		// difference is the setting's.
		on := b.NewPage(t)
		on.Navigate(ctx, srv.URL+"/")
		if on.Visible(ctx, "#ns") {
			t.Error("with JavaScript on <noscript> is shown")
		}
		on.Eval(ctx, `document.body.dataset.js === "ran"`, &ran)
		if !ran {
			t.Error("with JavaScript on the page's script did not run")
		}
	})

	t.Run("errors are collected", func(t *testing.T) {
		p := b.NewPage(t)
		srv := serve(t, map[string]string{
			"/": `<!doctype html><body>
<script>
console.log("not an error");
console.warn("not an error either");
console.error("boom", 42, {a: 1});
console.assert(1 === 2, "one is not two");
Promise.reject(new Error("nobody handles this"));
setTimeout(() => { throw new TypeError("uncaught in a timer"); }, 0);
new Image().src = "http://status.localhost:" + location.port + "/dot.png";
</script>
<script src="/missing.js"></script>`,
		})
		p.Navigate(ctx, srv.URL+"/")
		port := strings.TrimPrefix(srv.URL, "http://127.0.0.1:")
		want := []string{
			"console.error: boom 42 Object (" + srv.URL + "/:5:9)",
			"console.assert: one is not two (" + srv.URL + "/:6:9)",
			"exception: Uncaught (in promise) Error: nobody handles this (" + srv.URL + "/:7:16)",
			"exception: Uncaught TypeError: uncaught in a timer (" + srv.URL + "/:8:26)",
			"network error: Failed to load resource: the server responded with a status of 404 (Not Found) (" + srv.URL + "/missing.js)",
			// A name other than localhost does not resolve, even one
			// that Chromium would otherwise take to be loopback.
			"network error: Failed to load resource: net::ERR_NAME_NOT_RESOLVED (http://status.localhost:" + port + "/dot.png)",
		}
		// The timer's exception and the network's errors come after the
		// load event that Navigate waits for.
		var errs, missing []string
		wait.Until(context.Background(), 5*time.Second, func() bool {
			errs, missing = p.Errors(), nil
			for _, w := range want {
				if !slices.Contains(errs, w) {
					missing = append(missing, w)
				}
			}
			return len(missing) == 0
		})
		for _, m := range missing {
			t.Errorf("Errors lacks %q; got:\n%s", m, strings.Join(errs, "\n"))
		}
		for _, e := range errs {
			if strings.Contains(e, "not an error") || strings.Contains(e, "favicon.ico") {
				t.Errorf("Errors has %q, which the page did not get wrong", e)
			}
		}
	})

	t.Run("failures say why", func(t *testing.T) {
		p := b.NewPage(fatalRecorder{t})
		srv := serve(t, map[string]string{"/": `<!doctype html><p id="x">x</p>`})
		p.Navigate(ctx, srv.URL+"/")
		tests := []struct {
			name string
			f    func()
			want string
		}{
			{"404", func() { p.Navigate(ctx, srv.URL+"/nothing") }, "HTTP 404"},
			{"off loopback", func() { p.Navigate(ctx, "http://example.com/") }, `host "example.com" is not loopback`},
			{"no element", func() { p.Text(ctx, "#nothing") }, `text of "#nothing": no element matches`},
			{"throws", func() { p.Eval(ctx, `nothing.here`, nil) }, "nothing is not defined"},
			{"never true", func() { p.WaitFor(ctx, `window.never`, 100*time.Millisecond) }, "waited 100ms for window.never; last: false"},
			{"throws while waiting", func() { p.WaitFor(ctx, `nothing.here`, 100*time.Millisecond) }, "nothing is not defined"},
			{"decode", func() { var n int; p.Eval(ctx, `"text"`, &n) }, `decoding "text" into *int`},
			{"bad scheme", func() { p.SetColorScheme(ctx, "sepia") }, `color scheme "sepia"`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := failure(t, tt.f); !strings.Contains(got, tt.want) {
					t.Errorf("failed with %q, want it to say %q", got, tt.want)
				}
			})
		}
		// The page still works after its helpers failed.
		p.Navigate(ctx, srv.URL+"/")
		if got := p.Text(ctx, "#x"); got != "x" {
			t.Errorf("after failures Text = %q, want x", got)
		}
	})

	t.Run("caller's deadline", func(t *testing.T) {
		p := b.NewPage(fatalRecorder{t})
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		msg := failure(t, func() { p.WaitFor(short, `false`, time.Minute) })
		if waited := time.Since(start); waited > 2*time.Second {
			t.Errorf("WaitFor ran %s past a 100 ms deadline: %s", waited, msg)
		}
	})
}

func TestLoopbackOnly(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/", true},
		{"http://127.1.2.3/", true},
		{"http://[::1]:80/status", true},
		{"http://localhost:1234/", true},
		{"https://localhost/", true},
		{"about:blank", true},
		{"data:text/html,<p>hi</p>", true},
		{"http://example.com/", false},
		{"http://10.0.0.1/", false},
		{"http://status.localhost.example/", false},
		{"file:///etc/passwd", false},
		{"javascript:alert(1)", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := loopbackOnly(tt.url)
			if (err == nil) != tt.ok {
				t.Errorf("loopbackOnly(%q) = %v, want ok %v", tt.url, err, tt.ok)
			}
		})
	}
}

func TestMissingChromium(t *testing.T) {
	t.Setenv(ChromiumEnv, "")
	t.Setenv("PATH", t.TempDir())
	tests := []struct {
		require string
		want    string
	}{
		{"", "skip"},
		{"1", "fatal"},
	}
	for _, tt := range tests {
		t.Run("require="+tt.require, func(t *testing.T) {
			t.Setenv("TOCSIN_REQUIRE_SERVERS", tt.require)
			rec := recordEnd(t, findChromium)
			if rec.how != tt.want {
				t.Errorf("without a browser the test ended with %q (%s), want %q", rec.how, rec.msg, tt.want)
			}
			if !strings.Contains(rec.msg, "apt-get install chromium") {
				t.Errorf("message %q does not say how to install one", rec.msg)
			}
		})
	}
}

var errStop = fmt.Errorf("stopped")

// recordEnd runs helper with a test that records how the helper ended it,
// if it did, instead of ending t.
func recordEnd(t *testing.T, helper func(testing.TB) string) (rec *skipRecorder) {
	rec = &skipRecorder{TB: t}
	defer func() {
		if r := recover(); r != nil && r != errStop {
			panic(r)
		}
	}()
	helper(rec)
	return rec
}

// skipRecorder records whether a helper skipped or failed the test.
type skipRecorder struct {
	testing.TB
	how, msg string
}

func (*skipRecorder) Helper() {}

func (r *skipRecorder) Skip(args ...any) {
	r.how, r.msg = "skip", fmt.Sprint(args...)
	panic(errStop)
}

func (r *skipRecorder) Fatalf(format string, args ...any) {
	r.how, r.msg = "fatal", fmt.Sprintf(format, args...)
	panic(errStop)
}

func TestChromiumEnv(t *testing.T) {
	t.Setenv(ChromiumEnv, "/nonexistent/chromium")
	rec := recordEnd(t, findChromium)
	if rec.how != "fatal" || !strings.Contains(rec.msg, "/nonexistent/chromium") {
		t.Errorf("a missing %s ended the test with %s %q, want a failure naming it", ChromiumEnv, rec.how, rec.msg)
	}
}
