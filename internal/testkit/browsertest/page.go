package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Page is one browser tab. Its helpers fail the test that opened it, with a
// message that says what was asked and what the page did instead, so a
// test reads as a list of expectations. Each helper waits at most ten
// seconds, or until ctx ends if sooner.
//
// A Page is used by one goroutine at a time, the one running its test.
type Page struct {
	t   testing.TB
	ctx context.Context // chromedp's context for the tab

	mu   sync.Mutex
	errs []string
}

// Navigate loads rawURL and waits for its load event: the HTML, its scripts,
// styles and images, but not connections that stay open such as an
// EventSource. It fails the test if the page cannot be fetched or answers
// with an HTTP status of 400 or more, and it refuses a URL outside loopback,
// which a test must never reach.
func (p *Page) Navigate(ctx context.Context, rawURL string) {
	p.t.Helper()
	if err := loopbackOnly(rawURL); err != nil {
		p.t.Fatalf("browsertest: navigate to %s: %v", rawURL, err)
	}
	cctx, cancel := p.bound(ctx, callTimeout)
	defer cancel()
	resp, err := chromedp.Run(cctx, chromedp.NavigateResponse(rawURL))
	if err != nil {
		p.t.Fatalf("browsertest: navigate to %s: %v", rawURL, p.cause(cctx, err))
	}
	if resp != nil && resp.Status >= 400 {
		p.t.Fatalf("browsertest: navigate to %s: HTTP %d %s", rawURL, resp.Status, resp.StatusText)
	}
}

// loopbackOnly refuses a URL that would take the browser off this machine.
// about:blank and data: URLs stay in the browser.
func loopbackOnly(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "about", "data":
		return nil
	case "http", "https", "ws", "wss":
	default:
		return fmt.Errorf("scheme %q: only http(s) to loopback is allowed", u.Scheme)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("host %q is not loopback: a test must serve its pages on 127.0.0.1", host)
}

// Eval evaluates the JavaScript expression in the page and decodes its
// value, as JSON, into result, which may be nil to discard it. A promise is
// awaited. The expression throwing fails the test.
func (p *Page) Eval(ctx context.Context, expr string, result any) {
	p.t.Helper()
	raw, err := p.eval(ctx, expr)
	if err != nil {
		p.t.Fatalf("browsertest: eval %s: %v", expr, err)
	}
	if result == nil {
		return
	}
	if err := json.Unmarshal(raw, result); err != nil {
		p.t.Fatalf("browsertest: eval %s: decoding %s into %T: %v", expr, raw, result, err)
	}
}

// eval evaluates expr, bounded by callTimeout, and returns its value as
// JSON; undefined comes back as null.
func (p *Page) eval(ctx context.Context, expr string) (json.RawMessage, error) {
	cctx, cancel := p.bound(ctx, callTimeout)
	defer cancel()
	raw, err := chromedp.Run(cctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, p.cause(cctx, err)
	}
	if len(raw) == 0 {
		return json.RawMessage("null"), nil
	}
	return raw, nil
}

// query evaluates body as the body of a function of the element that
// selector matches first, el, and decodes what it returns into result. It
// fails the test if no element matches.
func (p *Page) query(ctx context.Context, what, selector, body string, result any) {
	p.t.Helper()
	sel, _ := json.Marshal(selector)
	expr := fmt.Sprintf(`(() => {
		const el = document.querySelector(%s);
		if (!el) return {missing: true};
		return {value: ((el) => { %s })(el)};
	})()`, sel, body)
	raw, err := p.eval(ctx, expr)
	if err != nil {
		p.t.Fatalf("browsertest: %s of %q: %v", what, selector, err)
	}
	var got struct {
		Missing bool            `json:"missing"`
		Value   json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		p.t.Fatalf("browsertest: %s of %q: %v", what, selector, err)
	}
	if got.Missing {
		p.t.Fatalf("browsertest: %s of %q: no element matches", what, selector)
	}
	if len(got.Value) == 0 {
		got.Value = json.RawMessage("null")
	}
	if err := json.Unmarshal(got.Value, result); err != nil {
		p.t.Fatalf("browsertest: %s of %q: decoding %s: %v", what, selector, got.Value, err)
	}
}

// Text returns the text of the first element that selector matches, as
// the page renders it (innerText: hidden parts left out, spaces collapsed,
// trimmed). It fails the test if no element matches; a test that must wait
// for one uses WaitFor first.
func (p *Page) Text(ctx context.Context, selector string) string {
	p.t.Helper()
	var s string
	p.query(ctx, "text", selector, `return el.innerText.trim();`, &s)
	return s
}

// Count returns how many elements selector matches, zero included.
func (p *Page) Count(ctx context.Context, selector string) int {
	p.t.Helper()
	sel, _ := json.Marshal(selector)
	var n int
	p.Eval(ctx, fmt.Sprintf(`document.querySelectorAll(%s).length`, sel), &n)
	return n
}

// Visible reports whether the first element selector matches is rendered
// with a size and not hidden: what a visitor could see by scrolling to it.
// No matching element is not visible.
func (p *Page) Visible(ctx context.Context, selector string) bool {
	p.t.Helper()
	sel, _ := json.Marshal(selector)
	var v bool
	p.Eval(ctx, fmt.Sprintf(`(() => {
		const el = document.querySelector(%s);
		if (!el) return false;
		const r = el.getBoundingClientRect();
		return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden";
	})()`, sel), &v)
	return v
}

// Attr returns the attribute name of the first element selector matches,
// and whether the element has it. It fails the test if no element matches.
func (p *Page) Attr(ctx context.Context, selector, name string) (string, bool) {
	p.t.Helper()
	n, _ := json.Marshal(name)
	var v *string
	p.query(ctx, "attribute "+name, selector, fmt.Sprintf(`return el.getAttribute(%s);`, n), &v)
	if v == nil {
		return "", false
	}
	return *v, true
}

// Style returns the computed value of the CSS property, such as
// "background-color", of the first element selector matches, as the
// browser resolves it: colours come back as "rgb(r, g, b)" whatever the
// stylesheet wrote, after media queries and emulation apply. It fails the
// test if no element matches.
func (p *Page) Style(ctx context.Context, selector, property string) string {
	p.t.Helper()
	prop, _ := json.Marshal(property)
	var s string
	p.query(ctx, "style "+property, selector, fmt.Sprintf(`return getComputedStyle(el).getPropertyValue(%s);`, prop), &s)
	return s
}

// pollInterval is how often WaitFor asks the page again: often enough that
// a change is seen promptly, rarely enough not to load a busy page.
const pollInterval = 25 * time.Millisecond

// WaitFor waits until the JavaScript expression is truthy in the page, for
// at most timeout, and fails the test if it never is. An expression that
// throws, say because the element it reads is not there yet, counts as
// false, and the last error is in the failure message. The expression is
// asked again after each navigation, so it may span a reload.
//
// It polls from the test rather than from a script in the page, so it also
// works on a page with JavaScript disabled.
func (p *Page) WaitFor(ctx context.Context, expr string, timeout time.Duration) {
	p.t.Helper()
	wctx, cancel := p.bound(ctx, timeout)
	defer cancel()
	deadline, _ := wctx.Deadline()
	check := fmt.Sprintf("!!(%s)", expr)
	last := "no answer"
	for {
		raw, err := p.eval(wctx, check)
		switch {
		case err != nil && !time.Now().Before(deadline):
			// Cut short by the wait's own end: the answer before says
			// more.
		case err != nil:
			last = err.Error()
		case string(raw) == "true":
			return
		default:
			last = "false"
		}
		select {
		case <-wctx.Done():
			p.t.Fatalf("browsertest: waited %s for %s; last: %s", timeout, expr, last)
		case <-time.After(pollInterval):
		}
	}
}

// Errors returns what the page has reported as going wrong since it was
// opened, in order: console.error and console.assert calls, exceptions
// nothing caught and promise rejections nothing handled, and the browser's
// own errors such as a script or stylesheet that failed to load or a
// Content-Security-Policy violation. Each is one line: its kind, its text,
// and where it came from. A missing /favicon.ico, which the browser asks
// for on its own, is left out.
//
// An event reaches the harness after the page sends it, so a test checks
// Errors after what it waited for, not straight after an action.
func (p *Page) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// record is called by chromedp for every event of the tab, on the
// goroutine that reads them, before the reply to any later command: an
// error that happened before a helper returned is in Errors when it does.
func (p *Page) record(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		line = "console." + string(ev.Type) + ": " + argsText(ev.Args) + stackPlace(ev.StackTrace)
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		if d == nil {
			return
		}
		text := d.Text
		if d.Exception != nil {
			if desc := firstLine(d.Exception.Description); desc != "" {
				text += " " + desc
			} else if len(d.Exception.Value) > 0 {
				text += " " + string(d.Exception.Value)
			}
		}
		line = "exception: " + text + place(d.URL, d.LineNumber, d.ColumnNumber)
	case *log.EventEntryAdded:
		e := ev.Entry
		if e == nil || e.Level != log.EntryLevelError || isFavicon(e.URL) {
			return
		}
		line = string(e.Source) + " error: " + e.Text
		if e.URL != "" && !strings.Contains(e.Text, e.URL) {
			line += " (" + e.URL + ")"
		}
	default:
		return
	}
	p.mu.Lock()
	p.errs = append(p.errs, line)
	p.mu.Unlock()
}

// isFavicon reports whether url is the icon the browser asks every site
// for on its own. A site without one is not a page that went wrong.
func isFavicon(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && u.Path == "/favicon.ico"
}

// argsText joins a console call's arguments as the DevTools console shows
// them, enough to recognise the message.
func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		var s string
		switch {
		case a.Type == runtime.RemoteObjectTypeString && len(a.Value) > 0:
			if err := json.Unmarshal(a.Value, &s); err != nil {
				s = string(a.Value)
			}
		case a.Description != "":
			s = firstLine(a.Description)
		case len(a.Value) > 0:
			s = string(a.Value)
		case a.UnserializableValue != "":
			s = string(a.UnserializableValue)
		default:
			s = string(a.Type)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func stackPlace(st *runtime.StackTrace) string {
	if st == nil || len(st.CallFrames) == 0 {
		return ""
	}
	f := st.CallFrames[0]
	return place(f.URL, f.LineNumber, f.ColumnNumber)
}

// place formats where a message came from as the DevTools console does,
// with the protocol's 0-based line and column made 1-based.
func place(url string, line, col int64) string {
	if url == "" {
		return ""
	}
	return " (" + url + ":" + strconv.FormatInt(line+1, 10) + ":" + strconv.FormatInt(col+1, 10) + ")"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// Viewport is the size of the page's window and the kind of device it
// pretends to be.
type Viewport struct {
	Width, Height int     // CSS pixels
	Scale         float64 // device pixels per CSS pixel; 0 is 1
	// Mobile makes the page lay out as on a phone: the viewport meta tag
	// applies, scrollbars overlay the page, and touch events are on.
	Mobile bool
}

// Phone is a common phone, held upright: what most visitors to a status
// page use when something is down.
var Phone = Viewport{Width: 390, Height: 844, Scale: 3, Mobile: true}

// Desktop is the window size the browser starts with.
var Desktop = Viewport{Width: 1280, Height: 800, Scale: 1}

// SetViewport makes the page lay out, and report through matchMedia and
// innerWidth, as in v. It applies at once, without a reload.
func (p *Page) SetViewport(ctx context.Context, v Viewport) {
	p.t.Helper()
	scale := v.Scale
	if scale == 0 {
		scale = 1
	}
	p.do(ctx, fmt.Sprintf("set viewport %+v", v), func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: int64(v.Width), Height: int64(v.Height), DeviceScaleFactor: scale, Mobile: v.Mobile,
		}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: v.Mobile})
		return err
	})
}

// SetColorScheme makes the page see prefers-color-scheme as scheme, "dark"
// or "light"; "" reverts to the browser's own, which is light. It applies
// at once, without a reload.
func (p *Page) SetColorScheme(ctx context.Context, scheme string) {
	p.t.Helper()
	switch scheme {
	case "dark", "light", "":
	default:
		p.t.Fatalf("browsertest: color scheme %q: want dark, light or empty", scheme)
	}
	p.do(ctx, "set color scheme "+scheme, func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}

// DisableJavaScript stops the page running scripts, as for a visitor who
// turned JavaScript off: <noscript> is rendered and no script, inline or
// loaded, runs. It takes effect for documents loaded after it, so call it
// before Navigate. The helpers keep working, since they do not run as the
// page's scripts.
func (p *Page) DisableJavaScript(ctx context.Context) {
	p.t.Helper()
	p.do(ctx, "disable JavaScript", func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	})
}

// Screenshot returns a PNG of what the viewport shows, for a test to save
// when it fails, so that someone can look at the page.
func (p *Page) Screenshot(ctx context.Context) []byte {
	p.t.Helper()
	var png []byte
	p.do(ctx, "screenshot", func(ctx context.Context, t *chromedp.Target) error {
		res, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatPng})
		png = res.Data
		return err
	})
	return png
}

// do runs f against the tab, bounded by callTimeout, failing the test with
// what if it fails.
func (p *Page) do(ctx context.Context, what string, f func(context.Context, *chromedp.Target) error) {
	p.t.Helper()
	cctx, cancel := p.bound(ctx, callTimeout)
	defer cancel()
	if err := chromedp.Do(cctx, chromedp.Func(f)); err != nil {
		p.t.Fatalf("browsertest: %s: %v", what, p.cause(cctx, err))
	}
}

// bound derives from the tab's context one that ends after timeout, or
// when the caller's ctx ends if that is sooner. chromedp finds the tab
// through its context, so the caller's ctx cannot be used directly.
func (p *Page) bound(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	cctx, cancel := context.WithDeadline(p.ctx, deadline)
	stop := context.AfterFunc(ctx, cancel)
	return cctx, func() {
		stop()
		cancel()
	}
}

// cause says why a call failed in the words a test reader needs: a
// timeout as a timeout, and a closed browser as closed.
func (p *Page) cause(cctx context.Context, err error) error {
	switch {
	case p.ctx.Err() != nil:
		return fmt.Errorf("%w: %v", errStopped, err)
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("no answer in time: %w", err)
	}
	return err
}
