package twilioapi

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tocsin-alarm/tocsin/internal/standin"
)

// MaxTwiML is the longest Twiml parameter Twilio takes when a call is
// created, in characters.
const MaxTwiML = 4000

// The error codes the Calls API answers a bad request with. Those for a
// missing or bad number are Twilio's documented ones; Twilio documents the
// 4000-character limit on Twiml but not the code of its refusal, so
// codeTwiMLTooLong is the stand-in's choice.
const (
	codeNoTo         = 21201 // No 'To' number is specified
	codeBadURL       = 21205 // Url parameter is not a valid URL
	codeBadTo        = 21211 // Invalid 'To' phone number
	codeBadFrom      = 21212 // Invalid 'From' phone number
	codeNoFrom       = 21213 // No 'From' phone number is specified
	codeBadCallback  = 21609 // Invalid StatusCallback URL
	codeTwiMLTooLong = 21658 // parameter over its character limit
)

// Call is one call the stand-in accepted, as the client asked for it.
type Call struct {
	SID            string // "CA" and 32 hex digits, as in the answer
	To, From       string
	TwiML          string // the Twiml parameter; empty when Url was given
	URL            string // the Url parameter; empty when Twiml was given
	StatusCallback string
	Timeout        string // the ring timeout as sent, in seconds; "" for Twilio's 60
	Received       time.Time
	// Raw is the request body as it arrived, for tests that check the
	// encoding byte for byte.
	Raw string
	// Header holds the request's headers, Authorization included.
	Header http.Header
}

// callResource is the JSON Twilio answers a created call with; the field
// order and the nulls are Twilio's.
type callResource struct {
	AccountSID      string            `json:"account_sid"`
	Annotation      *string           `json:"annotation"`
	AnsweredBy      *string           `json:"answered_by"`
	APIVersion      string            `json:"api_version"`
	CallerName      *string           `json:"caller_name"`
	DateCreated     string            `json:"date_created"`
	DateUpdated     string            `json:"date_updated"`
	Direction       string            `json:"direction"`
	Duration        *string           `json:"duration"`
	EndTime         *string           `json:"end_time"`
	ForwardedFrom   *string           `json:"forwarded_from"`
	From            string            `json:"from"`
	FromFormatted   string            `json:"from_formatted"`
	GroupSID        *string           `json:"group_sid"`
	ParentCallSID   *string           `json:"parent_call_sid"`
	PhoneNumberSID  *string           `json:"phone_number_sid"`
	Price           *string           `json:"price"`
	PriceUnit       string            `json:"price_unit"`
	QueueTime       string            `json:"queue_time"`
	SID             string            `json:"sid"`
	StartTime       *string           `json:"start_time"`
	Status          string            `json:"status"`
	SubresourceURIs map[string]string `json:"subresource_uris"`
	To              string            `json:"to"`
	ToFormatted     string            `json:"to_formatted"`
	TrunkSID        *string           `json:"trunk_sid"`
	URI             string            `json:"uri"`
}

// Calls returns a copy of every call accepted so far, in the order they
// were accepted.
func (s *Server) Calls() []Call {
	return s.calls.All()
}

// WaitForCalls returns the calls as soon as at least n have been accepted.
// If ctx ends or the stand-in closes first, it returns what did arrive and
// an error that lists it.
func (s *Server) WaitForCalls(ctx context.Context, n int) ([]Call, error) {
	return standin.WaitForN(ctx, s.Server, n, "call", s.Calls, func(c Call) string { return fmt.Sprintf("%s to %q", c.SID, c.To) })
}

// Press is the person who answered call callSID pressing digits: it posts
// to the action URL of the call's <Gather> what Twilio posts there (the
// call's CallSid, AccountSid, From, To and Direction, CallStatus
// in-progress and Digits), signed with X-Twilio-Signature, and returns the
// status of the answer. It fails if there is no such call, its TwiML has
// no <Gather> with an absolute action URL, or the URL cannot be reached.
func (s *Server) Press(ctx context.Context, callSID, digits string) (int, error) {
	a, err := s.PressAnswer(ctx, callSID, digits)
	return a.Status, err
}

// PressAnswer is Press returning the whole answer: its body is the TwiML
// the caller hears next.
func (s *Server) PressAnswer(ctx context.Context, callSID, digits string) (Answer, error) {
	var c Call
	found := false
	for _, call := range s.Calls() {
		if call.SID == callSID {
			c, found = call, true
			break
		}
	}
	if !found {
		return Answer{}, fmt.Errorf("twilioapi: no call %s was accepted", callSID)
	}
	action, method, err := GatherAction(c.TwiML)
	if err != nil {
		return Answer{}, fmt.Errorf("twilioapi: call %s: %w", callSID, err)
	}
	if method != "" && !strings.EqualFold(method, http.MethodPost) {
		return Answer{}, fmt.Errorf("twilioapi: call %s gathers with method %q; the stand-in posts only", callSID, method)
	}
	params := url.Values{
		"AccountSid":    {s.AccountSID},
		"ApiVersion":    {apiVersion},
		"CallSid":       {callSID},
		"CallStatus":    {"in-progress"},
		"Called":        {c.To},
		"Caller":        {c.From},
		"Digits":        {digits},
		"Direction":     {"outbound-api"},
		"FinishedOnKey": {""},
		"From":          {c.From},
		"To":            {c.To},
	}
	return s.post(ctx, action, params)
}

// GatherAction reads the action URL and method of the first <Gather> in
// twiml. The URL must be absolute: an inline TwiML document has no URL of
// its own to resolve a relative one against.
func GatherAction(twiml string) (action, method string, err error) {
	d := xml.NewDecoder(strings.NewReader(twiml))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return "", "", errors.New("its TwiML has no <Gather>")
		}
		if err != nil {
			return "", "", fmt.Errorf("its TwiML is not XML: %w", err)
		}
		el, ok := tok.(xml.StartElement)
		if !ok || el.Name.Local != "Gather" {
			continue
		}
		for _, a := range el.Attr {
			switch a.Name.Local {
			case "action":
				action = a.Value
			case "method":
				method = a.Value
			}
		}
		if !webURL(action) {
			return "", "", fmt.Errorf("its <Gather> has no absolute action URL: %q", action)
		}
		return action, method, nil
	}
}

// checkCall returns the code of Twilio's error for the first problem with
// a request to place a call, or 0.
func checkCall(form url.Values) int {
	to, from := form.Get("To"), form.Get("From")
	twiml, u := form.Get("Twiml"), form.Get("Url")
	switch {
	case to == "":
		return codeNoTo
	case !e164RE.MatchString(to):
		return codeBadTo
	case from == "":
		return codeNoFrom
	case !e164RE.MatchString(from):
		return codeBadFrom // a caller ID is a number, never a name
	case twiml == "" && u == "" && form.Get("ApplicationSid") == "":
		return codeBadURL
	case u != "" && !webURL(u):
		return codeBadURL
	case utf8.RuneCountInString(twiml) > MaxTwiML:
		return codeTwiMLTooLong
	case form.Get("StatusCallback") != "" && !webURL(form.Get("StatusCallback")):
		return codeBadCallback
	}
	return 0
}

func callMessage(code int, form url.Values) string {
	switch code {
	case codeNoTo:
		return "No 'To' number is specified"
	case codeBadTo:
		return fmt.Sprintf("The 'To' number %s is not a valid phone number.", form.Get("To"))
	case codeNoFrom:
		return "No 'From' number is specified"
	case codeBadFrom:
		return fmt.Sprintf("The 'From' number %s is not a valid phone number.", form.Get("From"))
	case codeBadURL:
		if form.Get("Url") == "" {
			return "Either Url, Twiml or ApplicationSid is required"
		}
		return fmt.Sprintf("Url is not a valid URL: %s", form.Get("Url"))
	case codeTwiMLTooLong:
		return fmt.Sprintf("Twiml exceeds the %d character limit", MaxTwiML)
	case codeBadCallback:
		return fmt.Sprintf("The StatusCallback URL %s is not a valid URL.", form.Get("StatusCallback"))
	}
	return fmt.Sprintf("Error %d", code)
}

func (s *Server) acceptCall(w http.ResponseWriter, r *http.Request, form url.Values, raw []byte) {
	now := time.Now()
	sid := NewSID("CA")
	c := Call{
		SID:            sid,
		To:             form.Get("To"),
		From:           form.Get("From"),
		TwiML:          form.Get("Twiml"),
		URL:            form.Get("Url"),
		StatusCallback: form.Get("StatusCallback"),
		Timeout:        form.Get("Timeout"),
		Received:       now,
		Raw:            string(raw),
		Header:         r.Header.Clone(),
	}
	date := now.UTC().Format(twilioTime)
	uri := "/" + apiVersion + "/Accounts/" + s.AccountSID + "/Calls/" + sid
	res := callResource{
		AccountSID:    s.AccountSID,
		APIVersion:    apiVersion,
		DateCreated:   date,
		DateUpdated:   date,
		Direction:     "outbound-api",
		From:          c.From,
		FromFormatted: c.From,
		PriceUnit:     "USD",
		QueueTime:     "0",
		SID:           sid,
		Status:        "queued",
		SubresourceURIs: map[string]string{
			"notifications": uri + "/Notifications.json",
			"recordings":    uri + "/Recordings.json",
			"events":        uri + "/Events.json",
		},
		To:          c.To,
		ToFormatted: c.To,
		URI:         uri + ".json",
	}

	// Stored before answering, so that a client that has its answer finds
	// the call in Calls.
	s.calls.Add(c)
	s.Arrived()
	s.record(Attempt{Time: now, Form: form, Status: http.StatusCreated})
	writeJSON(w, http.StatusCreated, res)
}
