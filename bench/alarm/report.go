package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// sample is one outage: from the failure to the SMS, and its stages.
type sample struct {
	n      int
	total  time.Duration
	stages stages
}

const header = "outage   to SMS = next check +    check +   judged + re-checks +   notify   failed first at; re-checks"

func (s sample) row() string {
	st := s.stages
	if !st.complete {
		return fmt.Sprintf("%6d %8s   (stages not all seen)", s.n, secs(s.total))
	}
	return fmt.Sprintf("%6d %8s   %10s   %8s   %8s   %9s   %8s   %s; %s",
		s.n, secs(s.total), secs(st.wait), secs(st.check), secs(st.judged), secs(st.confirm), secs(st.notify),
		st.from, strings.Join(st.rechecks, ", "))
}

// report prints the summary: median and max against the goal, each
// stage's median, every sample, and a row for docs/benchmarks.md.
func report(out io.Writer, mode string, samples []sample) {
	totals := make([]time.Duration, len(samples))
	var wait, check, judged, confirm, notify []time.Duration
	for i, s := range samples {
		totals[i] = s.total
		if st := s.stages; st.complete {
			wait, check, judged = append(wait, st.wait), append(check, st.check), append(judged, st.judged)
			confirm, notify = append(confirm, st.confirm), append(notify, st.notify)
		}
	}
	med, most := median(totals), slices.Max(totals)
	goal := goals[mode]
	verdict := "met"
	if med > goal {
		verdict = "missed"
	}
	fmt.Fprintf(out, "\n%s: %d outages, failure to SMS: median %s, max %s, min %s; goal median <= %s: %s\n",
		mode, len(samples), secs(med), secs(most), secs(slices.Min(totals)), goal, verdict)
	if len(wait) > 0 {
		fmt.Fprintf(out, "median of each stage (%d outages with every stage seen): next check %s, check %s, judged %s, re-checks %s, notify %s\n",
			len(wait), secs(median(wait)), secs(median(check)), secs(median(judged)), secs(median(confirm)), secs(median(notify)))
	}
	all := make([]string, len(totals))
	for i, t := range totals {
		all[i] = fmt.Sprintf("%.1f", t.Seconds())
	}
	fmt.Fprintf(out, "samples (s, in order): %s\n", strings.Join(all, ", "))
	fmt.Fprintf(out, "| %s | %d | %s | %s | ≤ %s: **%s** | %s |\n",
		mode, len(samples), secs(med), secs(most), goal, verdict, strings.Join(all, ", "))
}

// median is the middle value, or the mean of the two middle values.
func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }
