// Package problem says what kind of failure an operation met, so that the
// one place that answers a person (an HTTP handler, a command's exit code)
// can say so without reading the error's words: the caller's input was
// wrong, the thing it named does not exist, another change won the race, a
// system Tocsin asked did not answer. Any other error is Tocsin's own.
package problem

import (
	"errors"
	"fmt"
)

// Kind is a kind of failure.
type Kind int

// The kinds of failure.
const (
	Internal     Kind = iota // Tocsin's own: a bug, or its bus unreachable
	Invalid                  // the caller's input is wrong; asking again the same way fails again
	NotFound                 // what the caller named does not exist
	Conflict                 // another change came first; asking again may work
	Upstream                 // a system Tocsin asked (the DNS, say) did not answer
	Unauthorized             // the caller did not show the credentials this needs
)

// Error is a failure of a known kind.
type Error struct {
	Kind Kind
	Msg  string // the whole message, its cause's words included
	Err  error  // the cause, if any
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) Unwrap() error { return e.Err }

// Errorf is a failure of kind k, worded as fmt.Errorf words it; a %w
// argument becomes its cause.
func Errorf(k Kind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: k, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// KindOf is the kind of the first Error in err's chain; Internal when none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}
