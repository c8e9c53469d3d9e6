package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// checkDumpTarget refuses a --dump path that is not a regular file or a new name. The dump
// is written to a temporary file and renamed over path, and a rename replaces whatever
// the name was: a symlink (not the file it points to), a FIFO, or a device node
// (`--dump /dev/null` as root would leave /dev/null a regular file for every program).
// It runs before the model loads, so a bad path fails at once, and again just before the
// rename, for a path swapped meanwhile.
func checkDumpTarget(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--dump: %v", err)
	}
	if info.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("--dump %s: is a %s, not a regular file; refusing to replace it", path, fileKind(info.Mode()))
}

// fileKind names what a non-regular directory entry is.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
