package twiliovoice

import (
	"encoding/xml"
	"strings"
	"unicode/utf8"
)

// MaxTwiML is the longest Twiml parameter Twilio takes when a call is
// created, in characters.
const MaxTwiML = 4000

// Prompt is what the call asks of the person after reading the alarm;
// NoGatherPrompt replaces it on a call that takes no key.
const (
	Prompt         = "Press 1 to acknowledge."
	NoGatherPrompt = "Acknowledge by text message or by the link in your email."
)

// TwiML is the document a call runs: text read out twice, then Prompt,
// all inside a <Gather> of one key that Twilio posts to gatherURL, so that
// a key pressed while the alarm is still being read counts. Without a key
// the call says goodbye and ends. With no gatherURL the call takes no key
// and says NoGatherPrompt instead. text's runs of spaces and line breaks
// become one space, and text and gatherURL are XML-escaped, so that
// neither a server named `<&"` nor a URL with a query breaks the document
// or adds to it. A text that would make the document longer than
// MaxTwiML is cut, ending in "...".
func TwiML(text, gatherURL string) string {
	text = strings.Join(strings.Fields(text), " ")
	doc := twiml(text, gatherURL)
	if utf8.RuneCountInString(doc) <= MaxTwiML {
		return doc
	}
	// The longest start of text that fits with "..." after it: escaping
	// makes some characters cost more than others, so it is searched for.
	runes := []rune(text)
	cut := func(k int) string {
		if k == 0 {
			return twiml("", gatherURL)
		}
		return twiml(strings.TrimSpace(string(runes[:k]))+"...", gatherURL)
	}
	lo, hi := 0, len(runes) // cut(lo) fits, or lo is 0; cut(hi) does not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if utf8.RuneCountInString(cut(mid)) <= MaxTwiML {
			lo = mid
		} else {
			hi = mid
		}
	}
	return cut(lo)
}

func twiml(text, gatherURL string) string {
	var b strings.Builder
	say := func(s string) {
		b.WriteString("<Say>")
		_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder never fails
		b.WriteString("</Say>")
	}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Response>`)
	if gatherURL == "" {
		say(text)
		b.WriteString(`<Pause length="1"/>`)
		say(text)
		say(NoGatherPrompt)
		b.WriteString(`</Response>`)
		return b.String()
	}
	b.WriteString(`<Gather numDigits="1" action="`)
	_ = xml.EscapeText(&b, []byte(gatherURL))
	b.WriteString(`" method="POST">`)
	say(text)
	b.WriteString(`<Pause length="1"/>`)
	say(text)
	say(Prompt)
	b.WriteString(`</Gather>`)
	say("No key pressed. Goodbye.")
	b.WriteString(`</Response>`)
	return b.String()
}
