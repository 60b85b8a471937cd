// Package events is the contract between Tocsin's services: every event type,
// the subjects it travels on, the streams and key-value buckets that hold it,
// and the versioned JSON envelope around it. Services share nothing else, so a
// change here is a change of the wire format; the golden files in testdata pin it.
package events

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Version is the envelope version this package writes. Decoding refuses any
// other, so a newer producer is noticed rather than half understood.
const Version = 1

// Type names an event. It doubles as the last part of the event's kind in logs.
type Type string

// The event types. Events are facts in the past tense; tasks are requests.
const (
	TypeProbeTask          Type = "probe.task"
	TypeProbeResult        Type = "probe.result"
	TypeServerStateChanged Type = "server.state_changed"
	TypeFalseAlarm         Type = "server.false_alarm"
	TypeServerAction       Type = "server.action"
	TypeBoxStateChanged    Type = "box.state_changed"
	TypeIncidentOpened     Type = "incident.opened"
	TypeIncidentUpdated    Type = "incident.updated"
	TypeIncidentAcked      Type = "incident.acknowledged"
	TypeIncidentNote       Type = "incident.note"
	TypeIncidentEscalated  Type = "incident.escalated"
	TypeIncidentNotified   Type = "incident.notified"
	TypeIncidentResolved   Type = "incident.resolved"
	TypeMaintenanceSet     Type = "maintenance.set"
	TypeMaintenanceEnded   Type = "maintenance.ended"
)

// Payload is the data of one event type. Validate reports the first thing that
// makes the payload unusable; Subject is where the event is published, derived
// from the payload so that a subject and its data can never disagree.
type Payload interface {
	EventType() Type
	Subject() string
	Validate() error
}

// Event is a decoded envelope with its typed payload.
type Event struct {
	ID     string    // unique per event; also the JetStream message id, so publishing twice stores once
	Type   Type      // what Payload holds
	Time   time.Time // when the fact happened (not when it was published)
	Source string    // the service and instance that produced it, e.g. "prober@lon1"
	Data   Payload
}

// envelope is the wire form of an Event.
type envelope struct {
	Version int             `json:"v"`
	ID      string          `json:"id"`
	Type    Type            `json:"type"`
	Time    time.Time       `json:"time"`
	Source  string          `json:"source"`
	Data    json.RawMessage `json:"data"`
}

// New builds an event around a payload. The id must be stable for the fact it
// describes wherever redelivery could make a service produce it twice.
func New(id, source string, at time.Time, p Payload) Event {
	return Event{ID: id, Type: p.EventType(), Time: at.UTC(), Source: source, Data: p}
}

// Subject is the subject the event is published on.
func (e Event) Subject() string { return e.Data.Subject() }

// Validate checks the envelope and its payload.
func (e Event) Validate() error {
	switch {
	case e.ID == "":
		return errors.New("missing id")
	case len(e.ID) > 200:
		return errors.New("id longer than 200 characters")
	case !printable(e.ID):
		return fmt.Errorf("id %q has spaces or control characters", e.ID)
	case e.Time.IsZero():
		return errors.New("missing time")
	case e.Source == "":
		return errors.New("missing source")
	case e.Data == nil:
		return errors.New("missing data")
	case e.Data.EventType() != e.Type:
		return fmt.Errorf("type %q does not match data of type %q", e.Type, e.Data.EventType())
	}
	if err := e.Data.Validate(); err != nil {
		return fmt.Errorf("%s data: %w", e.Type, err)
	}
	return nil
}

// Marshal validates the event and encodes it as its envelope.
func (e Event) Marshal() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("invalid event %q: %w", e.ID, err)
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return nil, fmt.Errorf("encode %s data: %w", e.Type, err)
	}
	return json.Marshal(envelope{Version: Version, ID: e.ID, Type: e.Type, Time: e.Time.UTC(), Source: e.Source, Data: data})
}

// Decode parses and validates an envelope received on subject. An empty
// subject skips the check that the event belongs where it was found. Every
// error says what is wrong in words fit for a dead-letter reason.
func Decode(subject string, b []byte) (Event, error) {
	if ev, ok := decodeFast(subject, b); ok {
		return ev, nil
	}
	return decode(subject, b)
}

// decode is Decode for any input: encoding/json reads the envelope, then
// its data, and every error is explained.
func decode(subject string, b []byte) (Event, error) {
	var env envelope
	if err := strictUnmarshal(b, &env); err != nil {
		return Event{}, fmt.Errorf("malformed envelope: %w", err)
	}
	if env.Version != Version {
		return Event{}, fmt.Errorf("unsupported envelope version %d (this build reads %d)", env.Version, Version)
	}
	p, err := newPayload(env.Type)
	if err != nil {
		return Event{}, err
	}
	if len(env.Data) == 0 || bytes.Equal(env.Data, []byte("null")) {
		return Event{}, fmt.Errorf("%s event %q: missing data", env.Type, env.ID)
	}
	if err := strictUnmarshal(env.Data, p); err != nil {
		return Event{}, fmt.Errorf("%s event %q: malformed data: %w", env.Type, env.ID, err)
	}
	ev := Event{ID: env.ID, Type: env.Type, Time: env.Time, Source: env.Source, Data: p}
	if err := ev.Validate(); err != nil {
		return Event{}, fmt.Errorf("%s event %q: %w", env.Type, env.ID, err)
	}
	if subject != "" && ev.Subject() != subject {
		return Event{}, fmt.Errorf("%s event %q belongs on %q, found on %q", env.Type, env.ID, ev.Subject(), subject)
	}
	return ev, nil
}

// decodeFast is Decode for envelopes as Marshal writes them: each known key
// at most once, strings without escapes, a plain version number, an object
// for data. It reads the envelope in one pass and hands only the data to
// encoding/json, which otherwise checks and walks the data four times over
// (the envelope, then the data, each validated first); on the verifier's
// path that was a fifth of all the work. It reports false for anything
// else, and for any error: Decode then takes the general path, which
// accepts the same events, decodes them the same way, and explains what
// is wrong.
func decodeFast(subject string, b []byte) (Event, bool) {
	var (
		env  envelope
		data []byte
		seen uint8
	)
	sc := scanner{b: b}
	if !sc.byte('{') {
		return Event{}, false
	}
	for {
		key, ok := sc.str()
		if !ok || !sc.byte(':') {
			return Event{}, false
		}
		var bit uint8
		switch string(key) {
		case "v":
			bit = 1
			env.Version, ok = sc.int()
		case "id":
			bit = 2
			env.ID, ok = sc.text()
		case "type":
			bit = 4
			var t string
			t, ok = sc.text()
			env.Type = Type(t)
		case "time":
			bit = 8
			ok = sc.time(&env.Time)
		case "source":
			bit = 16
			env.Source, ok = sc.text()
		case "data":
			bit = 32
			data, ok = sc.object()
		default:
			// Unknown keys, and the other spellings encoding/json would
			// match without regard to case, take the general path.
			return Event{}, false
		}
		if !ok || seen&bit != 0 {
			return Event{}, false
		}
		seen |= bit
		if sc.byte(',') {
			continue
		}
		if !sc.byte('}') || !sc.end() {
			return Event{}, false
		}
		break
	}
	if env.Version != Version || data == nil {
		return Event{}, false
	}
	p, err := newPayload(env.Type)
	if err != nil {
		return Event{}, false
	}
	if !decodePayload(data, p) {
		// A payload type or a value the scanner does not read: the data,
		// at least, goes through encoding/json only once.
		if p, _ = newPayload(env.Type); strictUnmarshal(data, p) != nil {
			return Event{}, false
		}
	}
	ev := Event{ID: env.ID, Type: env.Type, Time: env.Time, Source: env.Source, Data: p}
	if ev.Validate() != nil || (subject != "" && ev.Subject() != subject) {
		return Event{}, false
	}
	return ev, true
}

// decodePayload reads data into p, a pointer to a payload struct, as
// encoding/json would, if p's type is one structCodec handles and data
// holds only what the scanner reads. On false p may be half filled.
func decodePayload(data []byte, p Payload) bool {
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return false
	}
	c := codecFor(v.Type().Elem())
	if c == nil {
		return false
	}
	sc := scanner{b: data}
	return c.decode(&sc, v.Elem()) && sc.end()
}

// structCodec decodes one struct type whose exported fields are all of
// kinds the scanner reads: strings, booleans, integers, floats, times,
// lists of strings, and structs of the same sort, by value or pointer.
// Keys must match a field's JSON name exactly, once each: anything else
// (a field added by a newer producer, a key spelled in another case,
// null) leaves it to encoding/json.
type structCodec struct {
	fields []fieldCodec
}

type fieldCodec struct {
	name  string
	index int
	kind  fieldKind
	elem  *structCodec // for kindStruct and kindStructPtr
}

type fieldKind uint8

const (
	kindString fieldKind = iota
	kindBool
	kindInt
	kindUint
	kindFloat
	kindTime
	kindStrings
	kindStruct
	kindStructPtr
)

// codecs holds a structCodec, or nil for a type it cannot handle, per
// payload type: worked out once, read ever after, like encoding/json's
// own cache of struct fields.
var codecs sync.Map // reflect.Type → *structCodec

func codecFor(t reflect.Type) *structCodec {
	if c, ok := codecs.Load(t); ok {
		return c.(*structCodec)
	}
	c := newStructCodec(t, 0)
	codecs.Store(t, c)
	return c
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// Limits of what structCodec takes on: a field's bit in a uint64, and
// payloads are not deep.
const (
	maxStructFields  = 64
	maxStructNesting = 4
)

// customDecoding reports whether encoding/json would hand values of t to
// a method of t's rather than decode them by their kind.
func customDecoding(t reflect.Type) bool {
	return t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) ||
		reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)
}

func newStructCodec(t reflect.Type, depth int) *structCodec {
	if t.Kind() != reflect.Struct || depth > maxStructNesting || customDecoding(t) || t.NumField() > maxStructFields {
		return nil
	}
	c := &structCodec{}
	names := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return nil // embedded fields are promoted by rules not worth copying
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		if !plainName(name) {
			return nil // encoding/json has rules for odd names; leave them to it
		}
		for _, o := range strings.Split(opts, ",") {
			if o == "string" {
				return nil
			}
		}
		if names[name] {
			return nil
		}
		names[name] = true
		fc := fieldCodec{name: name, index: i}
		ft := f.Type
		switch {
		case ft == timeType:
			fc.kind = kindTime
		case customDecoding(ft):
			return nil
		case ft.Kind() == reflect.String:
			fc.kind = kindString
		case ft.Kind() == reflect.Bool:
			fc.kind = kindBool
		case ft.Kind() >= reflect.Int && ft.Kind() <= reflect.Int64:
			fc.kind = kindInt
		case ft.Kind() >= reflect.Uint && ft.Kind() <= reflect.Uint64:
			fc.kind = kindUint
		case ft.Kind() == reflect.Float32 || ft.Kind() == reflect.Float64:
			fc.kind = kindFloat
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String && !customDecoding(ft.Elem()):
			fc.kind = kindStrings
		case ft.Kind() == reflect.Struct:
			fc.kind, fc.elem = kindStruct, newStructCodec(ft, depth+1)
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct && !customDecoding(ft.Elem()):
			fc.kind, fc.elem = kindStructPtr, newStructCodec(ft.Elem(), depth+1)
		default:
			return nil
		}
		if (fc.kind == kindStruct || fc.kind == kindStructPtr) && fc.elem == nil {
			return nil
		}
		c.fields = append(c.fields, fc)
	}
	return c
}

func plainName(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return s != ""
}

// decode reads an object into v, a struct of c's type.
func (c *structCodec) decode(s *scanner, v reflect.Value) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	var seen uint64
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return false
		}
		i := c.field(key)
		if i < 0 || seen&(1<<i) != 0 {
			return false
		}
		seen |= 1 << i
		if !c.fields[i].decode(s, v.Field(c.fields[i].index)) {
			return false
		}
		if s.byte(',') {
			continue
		}
		return s.byte('}')
	}
}

func (c *structCodec) field(key []byte) int {
	for i := range c.fields {
		if c.fields[i].name == string(key) {
			return i
		}
	}
	return -1
}

func (f *fieldCodec) decode(s *scanner, v reflect.Value) bool {
	switch f.kind {
	case kindString:
		t, ok := s.text()
		v.SetString(t)
		return ok
	case kindBool:
		switch {
		case s.literal("true"):
			v.SetBool(true)
		case s.literal("false"):
			v.SetBool(false)
		default:
			return false
		}
		return true
	case kindInt:
		n, err := strconv.ParseInt(string(s.number()), 10, 64)
		if err != nil || v.OverflowInt(n) {
			return false
		}
		v.SetInt(n)
		return true
	case kindUint:
		n, err := strconv.ParseUint(string(s.number()), 10, 64)
		if err != nil || v.OverflowUint(n) {
			return false
		}
		v.SetUint(n)
		return true
	case kindFloat:
		x, err := strconv.ParseFloat(string(s.number()), v.Type().Bits())
		if err != nil {
			return false
		}
		v.SetFloat(x)
		return true
	case kindTime:
		return s.time(v.Addr().Interface().(*time.Time))
	case kindStrings:
		return s.strings(v)
	case kindStruct:
		return f.elem.decode(s, v)
	case kindStructPtr:
		p := reflect.New(v.Type().Elem())
		if !f.elem.decode(s, p.Elem()) {
			return false
		}
		v.Set(p)
		return true
	}
	return false
}

// scanner reads the JSON of an envelope from the front. Each method skips
// the whitespace before its token and reports false for anything it does
// not read exactly as encoding/json would.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c.
func (s *scanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// str reads a string without escapes and returns what is between the
// quotes. Invalid UTF-8, which encoding/json would replace, is refused.
func (s *scanner) str() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start, ascii := s.i, true
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, ascii || utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (s *scanner) text() (string, bool) {
	v, ok := s.str()
	return string(v), ok
}

// int reads a number as encoding/json reads it into an int.
func (s *scanner) int() (int, bool) {
	n, err := strconv.Atoi(string(s.number()))
	return n, err == nil
}

// time reads a string as time.Time does from JSON.
func (s *scanner) time(t *time.Time) bool {
	s.space()
	start := s.i
	if _, ok := s.str(); !ok {
		return false
	}
	return t.UnmarshalJSON(s.b[start:s.i]) == nil
}

// literal consumes word (true, false).
func (s *scanner) literal(word string) bool {
	s.space()
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		return false
	}
	s.i += len(word)
	return true
}

// number returns a number as JSON writes it, or nil.
func (s *scanner) number() []byte {
	s.space()
	start := s.i
	digits := func() int {
		n := 0
		for ; s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9'; s.i++ {
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	first := s.i
	if n := digits(); n == 0 || (n > 1 && s.b[first] == '0') {
		return nil
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return nil
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return nil
		}
	}
	return s.b[start:s.i]
}

// strings reads a list of strings into v, a slice of a string kind. An
// empty list is an empty slice, not nil, as encoding/json has it.
func (s *scanner) strings(v reflect.Value) bool {
	if !s.byte('[') {
		return false
	}
	var list []string
	if !s.byte(']') {
		for {
			t, ok := s.text()
			if !ok {
				return false
			}
			list = append(list, t)
			if s.byte(',') {
				continue
			}
			if !s.byte(']') {
				return false
			}
			break
		}
	}
	out := reflect.MakeSlice(v.Type(), len(list), len(list))
	for i, t := range list {
		out.Index(i).SetString(t)
	}
	v.Set(out)
	return true
}

// object returns the object that starts here, braces included, without
// checking what is inside: the payload's decoder does that.
func (s *scanner) object() ([]byte, bool) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, false
	}
	start, depth, quoted := s.i, 0, false
	for ; s.i < len(s.b); s.i++ {
		c := s.b[s.i]
		switch {
		case quoted:
			switch c {
			case '\\':
				s.i++
			case '"':
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				s.i++
				return s.b[start:s.i], true
			}
		}
	}
	return nil, false
}

func newPayload(t Type) (Payload, error) {
	switch t {
	case TypeProbeTask:
		return &ProbeTask{}, nil
	case TypeProbeResult:
		return &ProbeResult{}, nil
	case TypeServerStateChanged:
		return &ServerStateChanged{}, nil
	case TypeFalseAlarm:
		return &FalseAlarm{}, nil
	case TypeServerAction:
		return &ServerAction{}, nil
	case TypeBoxStateChanged:
		return &BoxStateChanged{}, nil
	case TypeIncidentOpened:
		return &IncidentOpened{}, nil
	case TypeIncidentUpdated:
		return &IncidentUpdated{}, nil
	case TypeIncidentAcked:
		return &IncidentAcknowledged{}, nil
	case TypeIncidentNote:
		return &IncidentNote{}, nil
	case TypeIncidentEscalated:
		return &IncidentEscalated{}, nil
	case TypeIncidentNotified:
		return &IncidentNotified{}, nil
	case TypeIncidentResolved:
		return &IncidentResolved{}, nil
	case TypeMaintenanceSet:
		return &MaintenanceSet{}, nil
	case TypeMaintenanceEnded:
		return &MaintenanceEnded{}, nil
	case "":
		return nil, errors.New("missing event type")
	}
	return nil, fmt.Errorf("unknown event type %q", t)
}

// strictUnmarshal refuses trailing data (json.Unmarshal does). Unknown
// fields are allowed on purpose: a newer producer may add optional fields
// without breaking older consumers.
func strictUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// ValidToken reports whether s can be a server, box, location or incident id:
// it becomes one token of a NATS subject and of a key-value key, so it may not
// hold dots, wildcards or spaces. It runs for every event decoded, hence no
// regular expression.
func ValidToken(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

func checkToken(what, s string) error {
	if s == "" {
		return fmt.Errorf("missing %s", what)
	}
	if !ValidToken(s) {
		return fmt.Errorf("%s %q must be letters, digits, '-' or '_' (at most 63), starting with a letter or digit", what, s)
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}
