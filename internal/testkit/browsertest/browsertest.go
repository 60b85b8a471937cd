// Package browsertest runs a real headless Chromium, Debian's chromium
// package, for the length of one test, and drives it through the DevTools
// protocol, so that the public status page is tested as a visitor's browser
// renders it: its script running, its Server-Sent Events arriving, its dark
// mode and phone layout applied, and its page still readable with
// JavaScript off.
//
// A status-page test serves the page on loopback, starts a browser, opens
// a page in it, and asks the page what a visitor would see:
//
//	func TestStatusPageLive(t *testing.T) {
//		srv := httptest.NewServer(statuspage.New(cfg, deps).Handler())
//		defer srv.Close()
//		p := browsertest.Start(t).NewPage(t)
//		ctx := t.Context()
//
//		p.Navigate(ctx, srv.URL+"/")
//		if got := p.Text(ctx, "#c-web [data-role=text]"); got != "Online" {
//			t.Errorf("web shows %q, want Online", got)
//		}
//		// … publish an outage on the bus …
//		p.WaitFor(ctx, `document.querySelector("#c-web").dataset.dot === "unavailable"`, 5*time.Second)
//		if got, want := p.Style(ctx, "#c-web .dot", "background-color"), "rgb(207, 34, 46)"; got != want {
//			t.Errorf("dot is %s, want %s", got, want)
//		}
//		if errs := p.Errors(); len(errs) > 0 {
//			t.Errorf("the page logged errors:\n%s", strings.Join(errs, "\n"))
//		}
//	}
//
// A browser takes one to two seconds to start, so a test with several
// cases starts one and opens a page in each subtest, passing the
// subtest's t: a page's helpers fail the test that opened it. Pages share
// no cookies, storage, cache or emulation settings, and each is closed
// when its test ends.
//
// If no Chromium is installed the test is skipped, unless
// TOCSIN_REQUIRE_SERVERS=1 (servertest.RequireEnv), which CI sets, makes it
// fail. TOCSIN_CHROMIUM names the binary to use instead of searching PATH.
//
// The browser never reaches beyond this machine: it resolves no host name
// but localhost, uses no proxy, and has its updates, sync, metrics and
// other background requests turned off. A page that loads anything from
// another host (a web font, a CDN) therefore fails to, and the failure shows
// in [Page.Errors], which is what a status page that must work while the
// rest of the internet is down wants to know.
package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/tocsin-alarm/tocsin/internal/testkit/servertest"
)

// ChromiumEnv names the environment variable that, when set, is the path or
// name of the browser binary to use instead of searching PATH for one.
const ChromiumEnv = "TOCSIN_CHROMIUM"

// names are the browser binaries searched for in PATH, in order. Debian's
// package installs chromium; other distributions and Google's builds use
// the other names. All speak the same protocol.
var names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// debianLauncher is the script Debian installs as /usr/bin/chromium, and
// debianBinary the browser it runs. The script adds flags meant for a
// desktop (extensions from remote sites, GPU rasterisation, Google's API
// keys) and on some machines prints a shell error while computing them;
// the harness runs the binary itself so that its own flags are the only
// ones.
const (
	debianLauncher = "/usr/bin/chromium"
	debianBinary   = "/usr/lib/chromium/chromium"
)

// startTimeout bounds how long the browser may take to start and open its
// first page. It starts in about a second; the margin is for a loaded CI
// machine.
const startTimeout = 30 * time.Second

// stopTimeout bounds how long the browser may take to close when asked
// before it is killed.
const stopTimeout = 10 * time.Second

// callTimeout bounds each helper that does not take its own timeout, so
// that a page that never answers fails the test with a message rather than
// hanging until go test's own timeout. A caller's earlier deadline wins.
const callTimeout = 10 * time.Second

// Browser is one Chromium process, started for one test and stopped when
// that test ends. Tests drive it through its pages, opened with NewPage.
type Browser struct {
	version string
	root    context.Context // the chromedp context that owns the process
	out     *limitedBuffer  // what the browser printed, for failure messages
}

// Start starts a headless Chromium with a fresh profile in a temporary
// directory. The browser is closed, and its profile removed, when t ends.
//
// Without a browser installed Start skips the test, or fails it when
// TOCSIN_REQUIRE_SERVERS=1.
func Start(t testing.TB) *Browser {
	t.Helper()
	path := findChromium(t)
	// Made before the cleanup below is registered, so that it is removed
	// after the browser has stopped writing to it.
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	out := &limitedBuffer{max: 64 << 10}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(out),
		// Headless Chromium keeps its shared memory in files under TMPDIR
		// (see disable-dev-shm-usage); they go with the profile.
		chromedp.Env("TMPDIR=" + tmp),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			// Pdeathsig: a test binary that is killed must not leave a
			// browser behind. Setpgid: the browser forks a zygote, a GPU
			// and a network process, and renderers; the whole group is
			// killed together when the test ends.
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		}),
	}
	for _, f := range flags() {
		opts = append(opts, chromedp.Flag(f.name, f.value))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// ctx is the browser's first tab, kept on about:blank: the pages
	// tests use are opened beside it, each in a browser context of its
	// own.
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &Browser{root: ctx, out: out}

	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(ctx, stopTimeout)
		defer scancel()
		var pid int
		if c := chromedp.FromContext(ctx); c != nil && c.Browser != nil && c.Browser.Process() != nil {
			pid = c.Browser.Process().Pid
		}
		// Cancel closes the browser gracefully and waits for it; the
		// cancels after it kill it if it did not close in time.
		chromedp.Cancel(sctx)
		cancel()
		cancelAlloc()
		if pid > 0 {
			// Children that outlived the browser would keep writing to
			// the profile as it is removed.
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	})

	// The first Run starts the process and binds its life to ctx, so it
	// must not carry a deadline of its own: a timer cancels it instead if
	// the browser does not come up.
	timer := time.AfterFunc(startTimeout, cancel)
	began := time.Now()
	v, err := chromedp.Run(ctx, func(ctx context.Context, _ *chromedp.Target) (browser.GetVersionResult, error) {
		return cdp.Call(ctx, chromedp.FromContext(ctx).Browser, browser.GetVersion, cdp.Empty{})
	})
	if !timer.Stop() {
		err = fmt.Errorf("not ready after %s (%v)", startTimeout, err)
	}
	if err != nil {
		t.Fatalf("browsertest: starting %s: %v\n%s", path, err, out)
	}
	b.version = v.Product
	t.Logf("browsertest: %s started in %s", b.version, time.Since(began).Round(time.Millisecond))
	return b
}

// Version is what the browser calls itself, such as
// "Chrome/156.0.8078.79", for a failing test to report.
func (b *Browser) Version() string { return b.version }

// Output returns what the browser process has printed so far (its most
// recent 64 KiB), for a failing test to show.
func (b *Browser) Output() string { return b.out.String() }

// NewPage opens a tab in a browser context of its own, as a private window
// would: it shares no cookies, storage or cache with other pages, and its
// emulation settings are its own. The tab is closed when t ends, so a test
// starts the browser once and gives each subtest a page.
func (b *Browser) NewPage(t testing.TB) *Page {
	t.Helper()
	p := &Page{t: t}
	ctx, cancel := chromedp.NewContext(b.root,
		chromedp.WithNewBrowserContext(),
		chromedp.WithListener(p.record))
	p.ctx = ctx
	t.Cleanup(cancel)
	// Do with no action opens the tab now rather than in the first
	// helper, whose timeout would then bound the tab's whole life; for the
	// same reason a timer, not a deadline, bounds the opening.
	timer := time.AfterFunc(startTimeout, cancel)
	err := chromedp.Do(ctx)
	if !timer.Stop() {
		err = fmt.Errorf("not open after %s (%v)", startTimeout, err)
	}
	if err != nil {
		t.Fatalf("browsertest: opening a page: %v\n%s", err, b.out)
	}
	return p
}

// flag is one command-line switch: a string value is passed as
// --name=value, true as --name.
type flag struct {
	name  string
	value any
}

// flags are the browser's command line. chromedp's own defaults are not
// used, so that every switch is listed, and explained, here.
func flags() []flag {
	return []flag{
		{"headless", "new"},
		// The sandbox needs user namespaces or a setuid helper, and
		// refuses to run as root, which CI is.
		{"no-sandbox", true},
		{"disable-gpu", true},
		// /dev/shm is 64 MiB in many containers, too small for a page's
		// shared memory.
		{"disable-dev-shm-usage", true},
		{"no-first-run", true},
		{"no-default-browser-check", true},
		// Nothing beyond loopback: no host name resolves but localhost,
		// no proxy is used, and the requests a browser makes on its own
		// are off.
		// The rules apply to addresses as well as names, so loopback's
		// are excepted too; an IPv6 address is written without brackets.
		{"host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE ::1"},
		{"no-proxy-server", true},
		{"disable-background-networking", true},
		{"disable-component-update", true},
		{"disable-sync", true},
		{"disable-domain-reliability", true},
		{"disable-client-side-phishing-detection", true},
		{"disable-default-apps", true},
		{"disable-extensions", true},
		{"disable-breakpad", true},
		{"metrics-recording-only", true},
		{"no-pings", true},
		{"safebrowsing-disable-auto-update", true},
		{"disable-features", "Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater"},
		{"password-store", "basic"},
		{"use-mock-keychain", true},
		// A page in a background window must keep its timers and its
		// EventSource running at full speed, as a visitor's open tab does.
		{"disable-background-timer-throttling", true},
		{"disable-backgrounding-occluded-windows", true},
		{"disable-renderer-backgrounding", true},
		{"disable-hang-monitor", true},
		{"disable-ipc-flooding-protection", true},
		{"disable-popup-blocking", true},
		{"disable-prompt-on-repost", true},
		{"hide-scrollbars", true},
		{"mute-audio", true},
		// Colours read back from a page are the ones its CSS says.
		{"force-color-profile", "srgb"},
		{"window-size", "1280,800"},
		{"lang", "en-US"},
	}
}

// findChromium returns the browser binary to run: TOCSIN_CHROMIUM if set,
// else the first of names in PATH. It skips or fails the test when there is
// none.
func findChromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		found, err := exec.LookPath(p)
		if err != nil {
			// Asked for by name, so missing is a mistake, not a machine
			// without a browser.
			t.Fatalf("browsertest: %s=%s: %v", ChromiumEnv, p, err)
		}
		return found
	}
	for _, name := range names {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil && real == debianLauncher && isExecutable(debianBinary) {
			return debianBinary
		}
		return p
	}
	SkipOrFail(t, "no Chromium found in PATH (tried %s; %s names one): apt-get install chromium",
		strings.Join(names, ", "), ChromiumEnv)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// skipOrFail skips the test, or fails it when servertest.RequireEnv is 1,
// following the rule servertest keeps for the servers it runs.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(servertest.RequireEnv) == "1" {
		t.Fatalf("browsertest: %s (%s=1 requires every server)", msg, servertest.RequireEnv)
	}
	t.Skip("browsertest: " + msg)
}

// limitedBuffer keeps the last max bytes written to it. The browser writes
// from its own goroutine while a test may read.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// errStopped is what a helper reports when the test's browser or page has
// already been closed.
var errStopped = errors.New("the browser or page has been closed")
