package push

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// FuzzParse holds the endpoint's reading of a call to what it promises
// for any path and body: a token it accepts is well formed, a message is
// one line of valid UTF-8 with no control character and within bounds,
// and a path that is not a report is refused.
func FuzzParse(f *testing.F) {
	f.Add("POST", "/push/"+token+"/fail", []byte("rsync: disk full\n"))
	f.Add("GET", "/push/"+token, []byte(nil))
	f.Add("POST", "/push/"+token+"/fail/fail", []byte("\xff\x00\u202e"))
	f.Add("HEAD", "/push//fail", []byte(strings.Repeat("é", 3000)))
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		r, err := Parse(method, path, strings.NewReader(string(body)))
		if err != nil {
			if r != (Request{}) {
				t.Fatalf("refused, yet parsed %+v", r)
			}
			return
		}
		if !config.ValidPushToken(r.Token) || !strings.HasPrefix(path, "/push/"+r.Token) {
			t.Fatalf("token %q from path %q", r.Token, path)
		}
		if !r.Fail && r.Message != "" {
			t.Fatalf("a success with a message %q", r.Message)
		}
		if len(body) > MaxBody {
			t.Fatalf("a body of %d bytes accepted", len(body))
		}
		if len(r.Message) > events.MaxPushMessage || !utf8.ValidString(r.Message) {
			t.Fatalf("message of %d bytes, valid %v", len(r.Message), utf8.ValidString(r.Message))
		}
		for _, c := range r.Message {
			if unicode.IsControl(c) || c == '\n' || unicode.Is(unicode.Cf, c) {
				t.Fatalf("message %q holds %U", r.Message, c)
			}
		}
	})
}
