//go:build unix

package main

import (
	"fmt"
	"io/fs"
	"syscall"
)

// fileID is the device and inode of a file: a folder renamed into place under an old
// name is a different folder even when its size and time match.
func fileID(info fs.FileInfo) string {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	return ""
}
