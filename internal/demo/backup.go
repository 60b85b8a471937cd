package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// pushToken is the demo backup's token, known to the push service through
// the demo's environment.
const pushToken = "demo-backup-token-7f3c9a1e5d2f8046"

// skipEvery: one run in this many, the demo's backup does not run at all,
// and its deadline passes.
const skipEvery = 6

// pushEvery is how often the demo's backup "runs": a night in a few
// checks, and no more often than a push server may report.
func pushEvery(o Options) time.Duration { return max(3*o.Interval, 5*time.Second) }

// backUp is the nightly backup of the demo, sped up: it reports in to the
// push service each time it runs, as a cron job would with curl, and now
// and then does not run, so that its deadline passes and the alarm goes
// off with no prober involved.
func (w *World) backUp(ctx context.Context, out io.Writer) {
	url := "http://" + w.PushListener.Addr().String() + "/push/" + pushToken
	every := pushEvery(w.opts)
	client := &http.Client{Timeout: 5 * time.Second}
	for run := 1; ; run++ {
		if !sleep(ctx, every) {
			return
		}
		if run%skipEvery == 0 {
			fmt.Fprintf(out, "%s  demo: the nightly backup does not run this time: no report, so its deadline passes and the push service calls it missed\n", clock())
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
		if err != nil {
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			continue // the service is starting or stopping; the next run reports
		}
		resp.Body.Close()
		if run%skipEvery == 1 && run > 1 {
			fmt.Fprintf(out, "%s  demo: the nightly backup runs again and reports in\n", clock())
		}
	}
}
