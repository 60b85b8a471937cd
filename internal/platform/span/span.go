// Package span says a duration as people read it in an alarm: "10 min" in
// an SMS, "10 minutes" in an email or a post, never Go's "10m0s".
package span

import (
	"fmt"
	"time"
)

// Long is a duration in words, to the minute: "less than a minute",
// "1 minute", "2 hours 5 minutes", "3 days 4 hours".
func Long(d time.Duration) string {
	m := int(d.Round(time.Minute).Minutes())
	switch {
	case m < 1:
		return "less than a minute"
	case m < 60:
		return plural(m, "minute")
	case m < 48*60:
		return join(plural(m/60, "hour"), m%60, "minute")
	}
	h := m / 60
	return join(plural(h/24, "day"), h%24, "hour")
}

// Short is a duration for a text message, where every character counts:
// "40 s", "10 min", "2 h 5 min", "3 d 4 h". Under a minute it keeps seconds,
// because then they are news ("the call went unanswered for 40 s").
func Short(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return fmt.Sprintf("%d s", int(d.Round(time.Second).Seconds()))
	}
	m := int(d.Round(time.Minute).Minutes())
	switch {
	case m < 60:
		return fmt.Sprintf("%d min", m)
	case m < 48*60:
		if m%60 == 0 {
			return fmt.Sprintf("%d h", m/60)
		}
		return fmt.Sprintf("%d h %d min", m/60, m%60)
	}
	h := m / 60
	if h%24 == 0 {
		return fmt.Sprintf("%d d", h/24)
	}
	return fmt.Sprintf("%d d %d h", h/24, h%24)
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// join adds a smaller unit to a larger one unless it is zero.
func join(big string, n int, unit string) string {
	if n == 0 {
		return big
	}
	return big + " " + plural(n, unit)
}
