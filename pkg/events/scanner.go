package events

import (
	"bytes"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"
)

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
