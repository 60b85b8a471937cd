//go:build unix

package bus

import (
	"io/fs"
	"os"
	"syscall"
)

// ownedByUs reports whether this process's user owns the file, or is root
// and may use any.
func ownedByUs(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	uid := os.Geteuid()
	return !ok || uid == 0 || int(st.Uid) == uid
}
