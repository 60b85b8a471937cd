package events

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

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
// lists of strings, and structs of the same sort, by value, by pointer or
// in a list (a batch's results).
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
	kindStructs // a list of structs: a batch's items
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
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && !customDecoding(ft):
			fc.kind, fc.elem = kindStructs, newStructCodec(ft.Elem(), depth+1)
		default:
			return nil
		}
		if (fc.kind == kindStruct || fc.kind == kindStructPtr || fc.kind == kindStructs) && fc.elem == nil {
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

// decodeList reads a list of objects into v, a slice of c's struct type.
// An empty list is an empty slice, not nil, as encoding/json has it. The
// list grows as it is read: the message it comes in bounds it.
func (c *structCodec) decodeList(s *scanner, v reflect.Value) bool {
	if !s.byte('[') {
		return false
	}
	list := reflect.MakeSlice(v.Type(), 0, 0)
	if !s.byte(']') {
		for {
			list = reflect.Append(list, reflect.Zero(v.Type().Elem()))
			if !c.decode(s, list.Index(list.Len()-1)) {
				return false
			}
			if s.byte(',') {
				continue
			}
			if !s.byte(']') {
				return false
			}
			break
		}
	}
	v.Set(list)
	return true
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
	case kindStructs:
		return f.elem.decodeList(s, v)
	}
	return false
}
