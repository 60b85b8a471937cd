package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// measureEvents connects o.sse clients to /events, waits until the page
// has subscribed every one, changes one server's state in the bucket as
// the verifier would, and times for each client the arrival of the change
// from just before the write. The clients run in this process, so that
// one monotonic clock times both ends.
func measureEvents(ctx context.Context, o options, base string, writer *bus.Bus, f *fleet, out io.Writer) error {
	// A server that is up, in a box of three: its change alone, and not
	// its box's, goes out.
	var bx fleetBox
	for _, b := range f.boxes[scenarioBoxes:] {
		if len(b.servers) == 3 && b.servers[0].inService {
			bx = b
			break
		}
	}
	if bx.id == "" {
		return fmt.Errorf("no box of three servers beyond the first %d", scenarioBoxes)
	}
	target, name := bx.servers[0].id, bx.serverName(0)
	s, _, err := getSummary(ctx, base)
	if err != nil {
		return err
	}
	component := ""
	for _, c := range s.Components {
		if !c.Group && c.Name == name {
			component = c.ID
		}
	}
	if component == "" {
		return fmt.Errorf("summary.json has no component named %q", name)
	}
	needle := fmt.Sprintf(`"id":%q`, component)

	fmt.Fprintf(out, "\nevents: %d SSE clients of /events in this process; %s (%q) goes from up to down\n", o.sse, target, name)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: -1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	arrived := make([]time.Time, o.sse)
	var connected, failed atomic.Int32
	var firstErr sync.Once
	var connectErr error
	var wg sync.WaitGroup
	dialing := make(chan struct{}, 64) // connections being opened at once
	received := make(chan struct{}, o.sse)
	t0 := time.Now()
	for i := range o.sse {
		dialing <- struct{}{}
		wg.Go(func() {
			fail := func(err error) {
				failed.Add(1)
				firstErr.Do(func() { connectErr = err })
			}
			release := sync.OnceFunc(func() { <-dialing })
			defer release()
			req, err := http.NewRequestWithContext(cctx, "GET", base+"/events", nil)
			if err != nil {
				fail(err)
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				fail(err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				fail(fmt.Errorf("GET /events: %s", resp.Status))
				return
			}
			r := bufio.NewReaderSize(resp.Body, 1024)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					if cctx.Err() == nil {
						fail(fmt.Errorf("the stream ended: %w", err))
					}
					return
				}
				switch {
				case strings.HasPrefix(line, ": connected"):
					// The page writes this once it has subscribed the client.
					connected.Add(1)
					release()
				case strings.HasPrefix(line, "data: ") && strings.Contains(line, `"type":"server"`) && strings.Contains(line, needle):
					arrived[i] = time.Now()
					received <- struct{}{}
					// Hold the stream open until every client is done, as
					// a browser would.
					<-cctx.Done()
					return
				}
			}
		})
	}
	for connected.Load()+failed.Load() < int32(o.sse) {
		if time.Since(t0) > 2*time.Minute {
			return fmt.Errorf("only %d of %d SSE clients connected within 2 minutes", connected.Load(), o.sse)
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprintf(out, "connected: %d of %d clients in %s", connected.Load(), o.sse, time.Since(t0).Round(time.Millisecond))
	if n := failed.Load(); n > 0 {
		fmt.Fprintf(out, ", %d failed (the first: %v)", n, connectErr)
	}
	fmt.Fprintln(out)
	// Let the connections settle: the page's first "link" event, the
	// clients' buffers.
	time.Sleep(time.Second)

	kv, err := writer.KV(ctx, events.BucketServers)
	if err != nil {
		return err
	}
	data, err := json.Marshal(map[string]any{"id": target, "state": events.StateDown, "since": time.Now().UTC()})
	if err != nil {
		return err
	}
	wrote := time.Now()
	if _, err := kv.Put(ctx, target, data); err != nil {
		return fmt.Errorf("write %s's state: %w", target, err)
	}
	put := time.Since(wrote)
	want := int(connected.Load())
	got := 0
	wait := time.NewTimer(10 * time.Second)
	defer wait.Stop()
collect:
	for got < want {
		select {
		case <-received:
			got++
		case <-wait.C:
			break collect
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	cancel()
	wg.Wait()

	var lat []time.Duration
	within := 0
	for _, at := range arrived {
		if !at.IsZero() {
			d := at.Sub(wrote)
			lat = append(lat, d)
			if d <= time.Second {
				within++
			}
		}
	}
	slices.Sort(lat)
	fmt.Fprintf(out, "the write: %s until JetStream acknowledged it\n", ms(put))
	fmt.Fprintf(out, "received:  %d of %d clients within 10s, %d within 1s\n", len(lat), o.sse, within)
	if len(lat) > 0 {
		p50, p99, last := lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)], lat[len(lat)-1]
		fmt.Fprintf(out, "latency:   from the write to the event: min %s, p50 %s, p99 %s, max %s\n", ms(lat[0]), ms(p50), ms(p99), ms(last))
		fmt.Fprintf(out, "| %d | %d | %d | %s | %s | %s | %s |\n", o.servers, o.sse, len(lat), ms(lat[0]), ms(p50), ms(p99), ms(last))
	}
	goal := "missed"
	if within == o.sse {
		goal = "met"
	}
	fmt.Fprintf(out, "goal:      every client within 1s: %s\n", goal)
	return nil
}
