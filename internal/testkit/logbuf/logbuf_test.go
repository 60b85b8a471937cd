package logbuf

import (
	"fmt"
	"sync"
	"testing"
)

func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() { fmt.Fprintf(&b, "level=INFO msg=beat n=%d\n", i) })
		_ = b.String() // read while written: the race detector watches
	}
	wg.Wait()
	if !b.Has("level=INFO", "n=7") {
		t.Errorf("no line with level=INFO and n=7 in:\n%s", b.String())
	}
	if b.Has("n=3", "n=4") {
		t.Error("parts from two lines taken for one line")
	}
	if b.Has("level=ERROR") {
		t.Error("found what was never written")
	}
}
