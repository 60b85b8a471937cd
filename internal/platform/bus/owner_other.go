//go:build !unix

package bus

import "io/fs"

// ownedByUs cannot tell owners apart here: the mode is all that is checked.
func ownedByUs(fs.FileInfo) bool { return true }
