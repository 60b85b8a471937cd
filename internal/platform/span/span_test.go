package span

import (
	"testing"
	"time"
)

func TestLongAndShort(t *testing.T) {
	for _, c := range []struct {
		d           time.Duration
		long, short string
	}{
		{0, "less than a minute", "0 s"},
		{-time.Second, "less than a minute", "0 s"},
		{40 * time.Second, "1 minute", "40 s"},
		{29 * time.Second, "less than a minute", "29 s"},
		{time.Minute, "1 minute", "1 min"},
		{10 * time.Minute, "10 minutes", "10 min"},
		{10*time.Minute + 29*time.Second, "10 minutes", "10 min"},
		{59*time.Minute + 40*time.Second, "1 hour", "1 h"},
		{65 * time.Minute, "1 hour 5 minutes", "1 h 5 min"},
		{2*time.Hour + time.Minute, "2 hours 1 minute", "2 h 1 min"},
		{47*time.Hour + 59*time.Minute, "47 hours 59 minutes", "47 h 59 min"},
		{48 * time.Hour, "2 days", "2 d"},
		{76 * time.Hour, "3 days 4 hours", "3 d 4 h"},
		{25 * time.Hour, "25 hours", "25 h"},
	} {
		if got := Long(c.d); got != c.long {
			t.Errorf("Long(%v) = %q, want %q", c.d, got, c.long)
		}
		if got := Short(c.d); got != c.short {
			t.Errorf("Short(%v) = %q, want %q", c.d, got, c.short)
		}
	}
}
