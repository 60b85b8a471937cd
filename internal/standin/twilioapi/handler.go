package twilioapi

import (
	"crypto/subtle"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/tocsin-alarm/tocsin/internal/standin"
)

const (
	apiVersion = "2010-04-01"
	// maxBody is Twilio's limit on Body, in UTF-16 code units: Twilio
	// counts an emoji as two characters.
	maxBody = 1600
	// twilioTime is the RFC 2822 form Twilio gives its dates in, always
	// in GMT.
	twilioTime = "Mon, 02 Jan 2006 15:04:05 -0700"
)

var (
	e164RE      = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	shortCodeRE = regexp.MustCompile(`^[0-9]{5,6}$`)
	alphaIDRE   = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
	letterRE    = regexp.MustCompile(`[A-Za-z]`)
	serviceRE   = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
)

// twilioError is the body of Twilio's error answers; the field order is
// Twilio's.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// messageResource is the JSON Twilio answers a created message with; the
// field order and the numbers as strings are Twilio's.
type messageResource struct {
	AccountSID          string            `json:"account_sid"`
	APIVersion          string            `json:"api_version"`
	Body                string            `json:"body"`
	DateCreated         string            `json:"date_created"`
	DateSent            *string           `json:"date_sent"`
	DateUpdated         string            `json:"date_updated"`
	Direction           string            `json:"direction"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	From                *string           `json:"from"`
	MessagingServiceSID *string           `json:"messaging_service_sid"`
	NumMedia            string            `json:"num_media"`
	NumSegments         string            `json:"num_segments"`
	Price               *string           `json:"price"`
	PriceUnit           string            `json:"price_unit"`
	SID                 string            `json:"sid"`
	Status              string            `json:"status"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
	To                  string            `json:"to"`
	URI                 string            `json:"uri"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if !s.authenticated(r) {
		s.answerError(w, r, nil, Fault{Status: http.StatusUnauthorized})
		return
	}
	parts := strings.Split(r.URL.Path, "/") // "", version, "Accounts", sid, "Messages.json" or "Calls.json"
	if len(parts) != 5 || parts[0] != "" || parts[1] != apiVersion || parts[2] != "Accounts" ||
		parts[4] != "Messages.json" && parts[4] != "Calls.json" {
		s.answerError(w, r, nil, Fault{Status: http.StatusNotFound})
		return
	}
	form, raw, ok := s.admit(w, r, parts[3])
	if !ok {
		return
	}
	if parts[4] == "Calls.json" {
		if code := checkCall(form); code != 0 {
			s.answerError(w, r, form, Fault{Status: http.StatusBadRequest, Code: code, Message: callMessage(code, form)})
			return
		}
		s.acceptCall(w, r, form, raw)
		return
	}
	if code := check(form); code != 0 {
		s.answerError(w, r, form, Refused(code))
		return
	}
	s.accept(w, r, form, raw)
}

// admit reads a request to create a resource of account sid as Twilio
// does: the account must be the credentials', the method POST, the body a
// form of at most 1 MB; then a fault the test queued is answered, or a
// stall held. It returns the form and the raw body, or false once it has
// answered.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, sid string) (url.Values, []byte, bool) {
	if sid != s.AccountSID {
		// Credentials for one account do not open another's resources.
		s.answerError(w, r, nil, Fault{Status: http.StatusUnauthorized})
		return nil, nil, false
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.answerError(w, r, nil, Fault{Status: http.StatusMethodNotAllowed})
		return nil, nil, false
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		s.answerError(w, r, nil, Fault{Status: http.StatusRequestEntityTooLarge, Code: 20413, Message: "Request body too large"})
		return nil, nil, false
	}
	// Twilio reads parameters only from a form; a body of any other type
	// is as good as none, and the first check to fail says To is missing.
	form := url.Values{}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "application/x-www-form-urlencoded" {
		if f, err := url.ParseQuery(string(raw)); err == nil {
			form = f
		}
	}
	// Messages and calls fail on command from the same queue and rules.
	if f := s.fault(form); f != nil {
		if !f.Stall {
			s.answerError(w, r, form, *f)
			return nil, nil, false
		}
		if !s.Held(r, func() { s.record(Attempt{Time: time.Now(), Form: form}) },
			func() { s.answerError(w, r, form, ServerError(http.StatusServiceUnavailable)) }) {
			return nil, nil, false
		}
	}
	return form, raw, true
}

func (s *Server) authenticated(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	// Both comparisons run whatever the first says.
	u := subtle.ConstantTimeCompare([]byte(user), []byte(s.AccountSID))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(s.AuthToken))
	return ok && u&p == 1
}

// check returns the code of Twilio's error for the first problem with a
// request to send a message, in the order Twilio checks, or 0.
func check(form url.Values) int {
	to, from, service := form.Get("To"), form.Get("From"), form.Get("MessagingServiceSid")
	switch {
	case to == "":
		return 21604
	case !e164RE.MatchString(to):
		return 21211
	case from == "" && service == "":
		return 21603
	case from != "" && !validFrom(from):
		return 21212
	case service != "" && !serviceRE.MatchString(service):
		return 21701
	case form.Get("Body") == "":
		return 21602
	case len(utf16.Encode([]rune(form.Get("Body")))) > maxBody:
		return 21617
	case form.Get("StatusCallback") != "" && !webURL(form.Get("StatusCallback")):
		return 21609
	}
	return 0
}

// validFrom accepts what Twilio sends from: a number, a short code or an
// alphanumeric sender ID of up to 11 characters with at least one letter.
func validFrom(from string) bool {
	return e164RE.MatchString(from) || shortCodeRE.MatchString(from) ||
		alphaIDRE.MatchString(from) && letterRE.MatchString(from)
}

func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Hostname() != ""
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request, form url.Values, raw []byte) {
	now := time.Now()
	sid := NewSID("SM")
	body := form.Get("Body")
	m := Message{
		SID:                 sid,
		To:                  form.Get("To"),
		From:                form.Get("From"),
		MessagingServiceSID: form.Get("MessagingServiceSid"),
		Body:                body,
		StatusCallback:      form.Get("StatusCallback"),
		NumSegments:         segments(body),
		Received:            now,
		Raw:                 string(raw),
		Header:              r.Header.Clone(),
	}

	date := now.UTC().Format(twilioTime)
	uri := "/" + apiVersion + "/Accounts/" + s.AccountSID + "/Messages/" + sid
	res := messageResource{
		AccountSID:      s.AccountSID,
		APIVersion:      apiVersion,
		Body:            body,
		DateCreated:     date,
		DateUpdated:     date,
		Direction:       "outbound-api",
		NumMedia:        "0",
		NumSegments:     strconv.Itoa(m.NumSegments),
		PriceUnit:       "USD",
		SID:             sid,
		Status:          "queued",
		SubresourceURIs: map[string]string{"media": uri + "/Media.json", "feedback": uri + "/Feedback.json"},
		To:              m.To,
		URI:             uri + ".json",
	}
	if m.From != "" {
		res.From = &m.From
	}
	if m.MessagingServiceSID != "" {
		res.MessagingServiceSID = &m.MessagingServiceSID
		if m.From == "" {
			// Twilio picks the sender from the service's pool later, and
			// only then counts segments.
			res.Status, res.NumSegments = "accepted", "0"
		}
	}

	// Stored before answering, so that a client that has its answer finds
	// the message in Messages.
	s.store(m)
	s.record(Attempt{Time: now, Form: form, Status: http.StatusCreated})
	writeJSON(w, http.StatusCreated, res)
}

func (s *Server) answerError(w http.ResponseWriter, r *http.Request, form url.Values, f Fault) {
	code := f.Code
	if code == 0 {
		code = defaultCode(f.Status)
	}
	s.record(Attempt{Time: time.Now(), Form: form, Status: f.Status, Code: code})
	if f.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.RetryAfter.Seconds()))))
	}
	if f.HTML != "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.HTML)
		return
	}
	msg := f.Message
	if msg == "" {
		msg = message(code, form, r.URL.Path)
	}
	writeJSON(w, f.Status, twilioError{
		Code:     code,
		Message:  msg,
		MoreInfo: "https://www.twilio.com/docs/errors/" + strconv.Itoa(code),
		Status:   f.Status,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	standin.WriteJSON(w, status, "application/json", v)
}
