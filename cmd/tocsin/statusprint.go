package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/span"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/fleetstate"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier"
)

// writeStatus prints the report for a person at a terminal, 80 columns.
func writeStatus(out io.Writer, r *statusReport) {
	var w strings.Builder
	defer func() {
		// Aligned columns pad the empty cells at the ends of lines too.
		for line := range strings.Lines(w.String()) {
			fmt.Fprintln(out, strings.TrimRight(line, " \n"))
		}
	}()
	if len(r.Attention) == 0 {
		fmt.Fprintf(&w, "Tocsin at %s: all well\n", r.At.Format("2006-01-02 15:04 UTC"))
	} else {
		fmt.Fprintf(&w, "Tocsin at %s: %d need attention\n", r.At.Format("2006-01-02 15:04 UTC"), len(r.Attention))
		for _, a := range r.Attention {
			fmt.Fprintf(&w, "  ! %s\n", clip(a, 76))
		}
	}
	tw := tabwriter.NewWriter(&w, 0, 0, 2, ' ', 0)
	section := func(title string) { _ = tw.Flush(); fmt.Fprintf(&w, "\n%s\n", title) }

	section("SERVICES")
	for _, i := range r.Services {
		ready := "no answer"
		if i.Ready != nil && *i.Ready {
			ready = "ready"
			if i.Role != "" {
				ready += ", " + i.Role
			}
		} else if i.Ready != nil {
			ready = "NOT READY"
		}
		started, detail := "", i.Detail
		if !i.Started.IsZero() {
			started = "since " + fleetstate.Since(i.Started, r.At)
		}
		if detail == ready {
			detail = ""
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", i.Label(), ready, started, clip(detail, 30))
	}
	for _, m := range r.Missing {
		fmt.Fprintf(tw, "  %s\tMISSING\t\t\n", m)
	}

	section("PROBER LOCATIONS")
	for _, l := range r.Locations {
		state := fmt.Sprintf("live (%d prober)", l.Probers)
		if l.Probers > 1 {
			state = fmt.Sprintf("live (%d probers)", l.Probers)
		}
		if !l.Live {
			state = "SILENT"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", l.Location, state)
	}

	section("CONSUMERS")
	fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", "STREAM/CONSUMER", "PENDING", "UNACKED", "REDELIVERED")
	for _, c := range r.Consumers {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\n", clip(strings.TrimPrefix(c.Stream, "TOCSIN_")+"/"+c.Consumer, 40), c.Pending, c.AckPending, c.Redelivered)
	}
	fmt.Fprintf(tw, "  dead letters\t%d\t\t\n", r.Dead)

	section("SERVERS")
	var counts []string
	for _, s := range []events.ServerState{events.StateUp, events.StateDown, events.StateSuspect, events.StateMaintenance, events.StateNotInService, events.StateUnknown} {
		if n := r.Servers[string(s)]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, strings.ReplaceAll(string(s), "_", " ")))
		}
	}
	if len(counts) == 0 {
		counts = []string{"none judged yet"}
	}
	fmt.Fprintf(tw, "  %s\n", strings.Join(counts, ", "))
	for _, s := range r.Troubled {
		fmt.Fprintf(tw, "  %s\t%s\tsince %s\n", s.Server, strings.ToUpper(string(s.State)), fleetstate.Since(s.Since, r.At))
	}
	for _, st := range []events.BoxState{events.BoxDown, events.BoxDegraded} {
		if boxes := r.Boxes[string(st)]; len(boxes) > 0 {
			slices.Sort(boxes)
			fmt.Fprintf(tw, "  boxes %s: %s\n", st, clip(strings.Join(boxes, ", "), 60))
		}
	}

	section("OPEN INCIDENTS")
	if len(r.Open) == 0 {
		fmt.Fprintf(tw, "  none\n")
	}
	for i, inc := range r.Open {
		acked := "NOT ACKNOWLEDGED"
		if inc.AckedBy != "" {
			acked = "acked by " + inc.AckedBy
		}
		esc := "escalated: none"
		if len(inc.Escalations) > 0 {
			esc = "escalated: " + strings.Join(inc.Escalations, ", ")
		}
		fmt.Fprintf(tw, "  %s\tsince %s\t%s\t%s\n", inc.ID, fleetstate.Since(inc.Since, r.At), acked, esc)
		fmt.Fprintf(tw, "  \tboxes: %s\t\t\n", clip(strings.Join(inc.Boxes, ", "), 50))
		if i < len(r.Policies) {
			pos, next := policyLines(r.Policies[i], r.At)
			fmt.Fprintf(tw, "  \tpolicy: %s\n", clip(pos, 50))
			if next != "" {
				fmt.Fprintf(tw, "  \tnext: %s\n", clip(next, 52))
			}
		}
	}

	if len(r.Self) > 0 {
		section("SELF ALERTS (the alarm itself)")
		for _, a := range r.Self {
			fmt.Fprintf(tw, "  %s\tsince %s\t%s\n", a.Kind, fleetstate.Since(a.Raised, r.At), clip(a.Title, 50))
			if a.Action != "" {
				fmt.Fprintf(tw, "  \t%s\n", clip(a.Action, 60))
			}
		}
	}

	section("FAILOVER (newest per server)")
	if len(r.Actions) == 0 {
		fmt.Fprintf(tw, "  none\n")
	}
	for _, a := range r.Actions {
		outcome := string(a.Outcome)
		if a.Outcome == events.OutcomeFailed {
			outcome = "FAILED: " + a.Error
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", a.At.UTC().Format("15:04"), clip(a.Server, 12), a.Action, clip(a.Target, 24), clip(outcome, 26))
	}
	_ = tw.Flush()
}

// clip cuts s to n characters, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// policyLines say where an incident stands in its escalation policy
// ("outage, 2 of 4 rungs fired"), and what comes next, if anything
// ("03:24 (in 4 min): secondary by sms+voice").
func policyLines(p notifier.Position, now time.Time) (pos, next string) {
	switch p.Stage {
	case notifier.StageNotPaged, notifier.StageNoPolicy:
		return p.Stage, ""
	case notifier.StageAcknowledged:
		return fmt.Sprintf("%s, stopped by %s's ack at %s", p.Severity, p.AckedBy, p.AckedAt.UTC().Format("15:04")), ""
	}
	pos = fmt.Sprintf("%s, %d rungs fired", p.Severity, p.Fired)
	if p.Rungs > 0 {
		pos = fmt.Sprintf("%s, %d of %d rungs fired", p.Severity, p.Fired, p.Rungs)
	}
	switch {
	case p.Stage == notifier.StageExhausted:
		return pos, "none: every rung fired"
	case p.Next.IsZero():
		return pos, "unknown: give --config"
	}
	when := "due now"
	if p.Next.After(now) {
		when = "in " + span.Short(p.Next.Sub(now))
	}
	return pos, fmt.Sprintf("%s (%s): %s by %s", p.Next.UTC().Format("15:04"), when,
		strings.Join(p.NextWho, "+"), strings.Join(p.NextBy, "+"))
}
