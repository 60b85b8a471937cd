package twilioapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Status is a message's delivery status as Twilio reports it to the
// message's StatusCallback.
type Status string

// The statuses a status callback reports once Twilio has handed a message
// on.
const (
	Sent        Status = "sent"        // handed to the carrier
	Delivered   Status = "delivered"   // the carrier confirmed delivery
	Undelivered Status = "undelivered" // the carrier could not deliver it
	Failed      Status = "failed"      // Twilio could not send it
)

// Inbound is an SMS that someone sends to one of the account's numbers.
type Inbound struct {
	From, To, Body string
	// MessageSID names the message; empty picks a new one.
	MessageSID string
}

// Answer is what a webhook answered, for the test to judge.
type Answer struct {
	Status int
	Header http.Header
	Body   string // an inbound webhook's TwiML reply, for instance
}

// ReportStatus posts a status callback for the accepted message sid to the
// StatusCallback it was sent with, as Twilio does when the message's
// status changes: a form with MessageSid, MessageStatus, To, From and
// AccountSid (and ErrorCode for failed and undelivered, unless errorCode
// is 0), signed with X-Twilio-Signature. It fails if there is no such
// message or it had no StatusCallback, or if the callback could not be
// reached; any HTTP answer, an error status too, is returned as it came.
func (s *Server) ReportStatus(ctx context.Context, sid string, status Status, errorCode int) (Answer, error) {
	var m Message
	found := false
	for _, msg := range s.Messages() {
		if msg.SID == sid {
			m, found = msg, true
			break
		}
	}
	if !found {
		return Answer{}, fmt.Errorf("twilioapi: no message %s was accepted", sid)
	}
	if m.StatusCallback == "" {
		return Answer{}, fmt.Errorf("twilioapi: message %s was sent without a StatusCallback", sid)
	}
	params := url.Values{
		"AccountSid":    {s.AccountSID},
		"ApiVersion":    {apiVersion},
		"MessageSid":    {sid},
		"MessageStatus": {string(status)},
		"SmsSid":        {sid},
		"SmsStatus":     {string(status)},
		"To":            {m.To},
	}
	if m.From != "" {
		params.Set("From", m.From)
	}
	if m.MessagingServiceSID != "" {
		params.Set("MessagingServiceSid", m.MessagingServiceSID)
	}
	if errorCode != 0 && (status == Failed || status == Undelivered) {
		params.Set("ErrorCode", strconv.Itoa(errorCode))
	}
	return s.post(ctx, m.StatusCallback, params)
}

// SendInbound posts in to webhookURL as Twilio posts an incoming SMS to a
// number's messaging webhook: a form with From, To, Body, MessageSid,
// AccountSid and Twilio's other fields, signed with X-Twilio-Signature.
// The answer's body is the webhook's TwiML reply.
func (s *Server) SendInbound(ctx context.Context, webhookURL string, in Inbound) (Answer, error) {
	sid := in.MessageSID
	if sid == "" {
		sid = NewSID("SM")
	}
	params := url.Values{
		"AccountSid":    {s.AccountSID},
		"ApiVersion":    {apiVersion},
		"Body":          {in.Body},
		"From":          {in.From},
		"MessageSid":    {sid},
		"NumMedia":      {"0"},
		"NumSegments":   {strconv.Itoa(max(segments(in.Body), 1))},
		"SmsMessageSid": {sid},
		"SmsSid":        {sid},
		"SmsStatus":     {"received"},
		"To":            {in.To},
	}
	return s.post(ctx, webhookURL, params)
}

// post sends params to rawURL as Twilio sends webhooks.
func (s *Server) post(ctx context.Context, rawURL string, params url.Values) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, strings.NewReader(params.Encode()))
	if err != nil {
		return Answer{}, fmt.Errorf("twilioapi: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("X-Twilio-Signature", Signature(s.AuthToken, rawURL, params))
	req.Header.Set("I-Twilio-Idempotency-Token", NewSID(""))
	resp, err := s.webhooks.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("twilioapi: webhook: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Answer{}, fmt.Errorf("twilioapi: read webhook answer: %w", err)
	}
	return Answer{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}, nil
}

// Signature is the X-Twilio-Signature Twilio sends with a form POSTed to
// rawURL, signed with authToken: the base64 HMAC-SHA1 of the URL exactly
// as configured followed by each parameter's name and value, sorted by
// name (and by value for a repeated name). Tests use it to forge requests
// with a good or a bad signature.
func Signature(authToken, rawURL string, params url.Values) string {
	var pairs []string
	for k, vs := range params {
		for _, v := range vs {
			pairs = append(pairs, k+"\x00"+v)
		}
	}
	slices.Sort(pairs) // by name, then value: NUL sorts before any character
	mac := hmac.New(sha1.New, []byte(authToken))
	_, _ = io.WriteString(mac, rawURL)
	for _, p := range pairs {
		_, _ = io.WriteString(mac, strings.Replace(p, "\x00", "", 1))
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
