//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package pkg

import (
	"errors"
	"io/fs"
	"os"
)

// Without flock (Windows, js/wasm) a converter's liveness cannot be told, so no marker is
// written and no partial folder is ever taken for stale.
func lockFile(*os.File) error         { return errors.ErrUnsupported }
func ownedByUs(info fs.FileInfo) bool { return false }
