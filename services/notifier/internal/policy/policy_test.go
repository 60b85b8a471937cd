package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

var t0 = time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)

const (
	degraded = events.SeverityDegraded
	outage   = events.SeverityOutage
	warning  = events.SeverityWarning
)

func rung(after time.Duration, who, by string) Rung {
	return Rung{After: after, Who: strings.Split(who, "+"), By: strings.Split(by, "+")}
}

// policies are the defaults for an outage, and a gentler policy for a
// degraded service.
var policies = Policies{
	outage: {
		rung(0, "oncall", "sms"),
		rung(5*time.Minute, "oncall", "voice"),
		rung(10*time.Minute, "secondary", "sms+voice"),
		rung(20*time.Minute, "team", "sms+email"),
	},
	degraded: {
		rung(0, "oncall", "sms"),
		rung(30*time.Minute, "oncall", "voice"),
		rung(time.Hour, "secondary", "sms+email"),
	},
}

// people are a team of four: Dee has no phone.
var people = map[string]Person{
	"ann": {"ann", true, true}, "bob": {"bob", true, true},
	"cy": {"cy", true, true}, "dee": {"dee", false, true},
}

// roster is a Resolver read from words: "oncall=ann secondary=bob" puts
// Ann on call and Bob second throughout; "oncall=ann,8m:cy" hands over to
// Cy 8 minutes in; "secondary=" leaves nobody second. The team is everyone;
// a name is that person.
func roster(spec string) Resolver {
	type shift struct {
		from time.Duration
		name string
	}
	shifts := map[string][]shift{}
	for _, f := range strings.Fields(spec) {
		word, list, _ := strings.Cut(f, "=")
		shifts[word] = nil
		for i, s := range strings.Split(list, ",") {
			from, name := time.Duration(0), s
			if i > 0 {
				d, n, _ := strings.Cut(s, ":")
				from, name = dur(d), n
			}
			shifts[word] = append(shifts[word], shift{from, name})
		}
	}
	return ResolverFunc(func(who string, at time.Time) []Person {
		if who == "team" {
			return []Person{people["ann"], people["bob"], people["cy"], people["dee"]}
		}
		ss, ok := shifts[who]
		if !ok {
			if p, ok := people[who]; ok {
				return []Person{p}
			}
			return nil
		}
		name := ""
		for _, s := range ss {
			if !at.Before(t0.Add(s.from)) {
				name = s.name
			}
		}
		if p, ok := people[name]; ok {
			return []Person{p}
		}
		return nil
	})
}

func dur(s string) time.Duration {
	if s == "0" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

func fmtDur(d time.Duration) string {
	s := d.String()
	s = strings.Replace(s, "m0s", "m", 1)
	s = strings.Replace(s, "h0m", "h", 1)
	if s == "0s" {
		s = "0"
	}
	return s
}

// run plays a script against a policy from its start at t0, as a caller
// that records every step it is given would. Each clause is "t=<time since
// t0>", then what happens then ("ack:<name>", "rise:<severity>"), then
// what the package says, which run writes:
//   - "fire:<person>/<channel>+<channel>", one per person paged;
//   - "had:<person>/<channel>": a page a rung before a rise already sent;
//   - "gap:<word>": a word of a rung that reached nobody;
//   - "names:<word>@<due>": a skipped rung this one's message names;
//   - "next:<time>" when the next rung is due, or "done".
func run(ps Policies, res Resolver, sev events.Severity, script string) string {
	r := Start(sev, t0)
	var out []string
	for _, clause := range strings.Split(script, ";") {
		fields := strings.Fields(clause)
		now := t0.Add(dur(strings.TrimPrefix(fields[0], "t=")))
		words := []string{fields[0]}
		for _, f := range fields[1:] {
			if by, ok := strings.CutPrefix(f, "ack:"); ok {
				r.Ack = &Ack{By: by, At: now}
				words = append(words, f)
			}
			if to, ok := strings.CutPrefix(f, "rise:"); ok {
				r = Rise(ps, r, events.Severity(to), now)
				words = append(words, f)
			}
		}
		d := Evaluate(ps, r, now, res)
		r.Fired = append(r.Fired, d.Steps...)
		for _, s := range d.Steps {
			for _, p := range s.Pages {
				words = append(words, "fire:"+p.Person+"/"+strings.Join(p.By, "+"))
			}
			for _, p := range s.Already {
				words = append(words, "had:"+p.Person+"/"+strings.Join(p.By, "+"))
			}
			for _, w := range s.Nobody {
				words = append(words, "gap:"+w)
			}
			for _, k := range s.Skips {
				words = append(words, fmt.Sprintf("names:%s@%s", strings.Join(k.Who, "+"), fmtDur(k.Due.Sub(t0))))
			}
		}
		if d.Next.IsZero() {
			words = append(words, "done")
		} else {
			words = append(words, "next:"+fmtDur(d.Next.Sub(t0)))
		}
		out = append(out, strings.Join(words, " "))
	}
	return strings.Join(out, "; ")
}

func TestEscalation(t *testing.T) {
	tests := []struct {
		name   string
		roster string
		sev    events.Severity
		script string
	}{
		{"each rung fires at its time", "oncall=ann secondary=bob", outage,
			"t=0 fire:ann/sms next:5m; t=4m59s next:5m; t=5m fire:ann/voice next:10m; t=10m fire:bob/sms+voice next:20m; " +
				"t=20m fire:ann/sms+email fire:bob/sms+email fire:cy/sms+email fire:dee/email done; t=1h done"},
		{"a rung fires once however often it is asked", "oncall=ann secondary=bob", outage,
			"t=0 fire:ann/sms next:5m; t=0 next:5m; t=1m next:5m; t=5m fire:ann/voice next:10m; t=5m next:10m; t=9m59s next:10m"},
		{"rungs missed while nobody asked all fire", "oncall=ann secondary=bob", outage,
			"t=0 fire:ann/sms next:5m; t=25m fire:ann/voice fire:bob/sms+voice fire:ann/sms+email fire:bob/sms+email fire:cy/sms+email fire:dee/email done"},
		{"an acknowledgement stops the rest", "oncall=ann secondary=bob", outage,
			"t=0 fire:ann/sms next:5m; t=5m fire:ann/voice next:10m; t=7m ack:ann done; t=10m done; t=20m done"},
		{"at any moment", "oncall=ann secondary=bob", outage,
			"t=0 fire:ann/sms next:5m; t=1s ack:ann done; t=5m done"},
		{"by anyone", "oncall=ann secondary=bob", outage,
			"t=0 fire:ann/sms next:5m; t=5m fire:ann/voice next:10m; t=10m fire:bob/sms+voice next:20m; t=12m ack:dee done"},
		{"even with a rung due and not yet fired", "oncall=ann secondary=bob", outage,
			"t=0 fire:ann/sms next:5m; t=6m ack:ann done"},
		{"a gap is skipped and the next rung names it", "oncall=ann secondary=", outage,
			"t=0 fire:ann/sms next:5m; t=5m fire:ann/voice next:10m; t=10m gap:secondary next:20m; " +
				"t=20m fire:ann/sms+email fire:bob/sms+email fire:cy/sms+email fire:dee/email names:secondary@10m done"},
		{"someone on call without a phone: the phone rungs are gaps", "oncall=dee secondary=bob", outage,
			"t=0 gap:oncall next:5m; t=5m gap:oncall next:10m; t=10m fire:bob/sms+voice names:oncall@0 names:oncall@5m next:20m; " +
				"t=20m fire:ann/sms+email fire:bob/sms+email fire:cy/sms+email fire:dee/email done"},
		{"a rung names who fired only since the last that fired", "oncall=ann,4m:dee secondary=,15m:bob", outage,
			"t=0 fire:ann/sms next:5m; t=5m gap:oncall next:10m; t=10m gap:secondary next:20m; " +
				"t=20m fire:ann/sms+email fire:bob/sms+email fire:cy/sms+email fire:dee/email names:oncall@5m names:secondary@10m done"},
		{"a handover between rungs: the later rung pages the new person", "oncall=ann,3m:cy secondary=bob", outage,
			"t=0 fire:ann/sms next:5m; t=5m fire:cy/voice next:10m"},
		{"a rise keeps the clock: what the new policy names by now fires at once, but not what was sent", "oncall=ann secondary=bob", degraded,
			"t=0 fire:ann/sms next:30m; t=12m rise:outage had:ann/sms fire:ann/voice fire:bob/sms+voice next:20m; " +
				"t=20m fire:ann/email fire:bob/sms+email fire:cy/sms+email fire:dee/email had:ann/sms done"},
		{"a rise after an acknowledgement starts the new policy afresh", "oncall=ann secondary=bob", degraded,
			"t=0 fire:ann/sms next:30m; t=3m ack:ann done; t=12m rise:outage fire:ann/sms next:17m; t=17m fire:ann/voice next:22m; t=22m fire:bob/sms+voice next:32m"},
		{"a rise from a warning starts the policy at the rise", "oncall=ann secondary=bob", warning,
			"t=0 done; t=1h done; t=2h rise:outage fire:ann/sms next:2h5m"},
		{"a fall changes nothing", "oncall=ann secondary=bob", outage,
			"t=0 fire:ann/sms next:5m; t=2m rise:degraded next:5m; t=5m fire:ann/voice next:10m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(policies, roster(tt.roster), tt.sev, tt.script); got != tt.script {
				t.Errorf("\ngot  %s\nwant %s", got, tt.script)
			}
		})
	}
}

// TestOnePersonOnePage: a person several words of a rung stand for is
// paged once, by each channel they have.
func TestOnePersonOnePage(t *testing.T) {
	ps := Policies{outage: {rung(0, "oncall+dee+team", "sms+email")}}
	got := run(ps, roster("oncall=dee"), outage, "t=0")
	if want := "t=0 fire:dee/email fire:ann/sms+email fire:bob/sms+email fire:cy/sms+email done"; got != want {
		t.Errorf("\ngot  %s\nwant %s", got, want)
	}
}

// TestEvaluateIsPure: the record is not changed, and the same record at
// the same moment gives the same decision.
func TestEvaluateIsPure(t *testing.T) {
	res := roster("oncall=ann secondary=bob")
	r := Start(outage, t0)
	r.Fired = Evaluate(policies, r, t0, res).Steps
	before := Record{Severity: r.Severity, Started: r.Started, Fired: append([]Step(nil), r.Fired...)}
	a := Evaluate(policies, r, t0.Add(11*time.Minute), res)
	b := Evaluate(policies, r, t0.Add(11*time.Minute), res)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("two evaluations differ:\n%s", diff)
	}
	if diff := cmp.Diff(before, r); diff != "" {
		t.Errorf("the record changed:\n%s", diff)
	}
	want := []Step{
		{Severity: outage, Rung: 1, Due: t0.Add(5 * time.Minute), At: t0.Add(11 * time.Minute), Pages: []Page{{"ann", []string{"voice"}}}},
		{Severity: outage, Rung: 2, Due: t0.Add(10 * time.Minute), At: t0.Add(11 * time.Minute), Pages: []Page{{"bob", []string{"sms", "voice"}}}},
	}
	if diff := cmp.Diff(want, a.Steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if got, want := a.Next, t0.Add(20*time.Minute); !got.Equal(want) {
		t.Errorf("next %s, want %s", got, want)
	}
}
