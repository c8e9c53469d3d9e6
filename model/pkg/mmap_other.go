//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package pkg

import (
	"errors"
	"os"
)

// mapFile is unavailable here: ReadMatrix reads each tensor's packed bytes into the heap
// instead (still packed, never widened to float32).
func mapFile(*os.File, int64) ([]byte, func([]byte), error) {
	return nil, nil, errors.ErrUnsupported
}
