//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package pkg

import (
	"io/fs"
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on f, held until f is closed or the process ends, or
// fails at once if someone holds it.
func lockFile(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) }

// ownedByUs reports whether the current user owns the file.
func ownedByUs(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}
