package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// errNotServable marks a name that exists but that the server must not serve: it leaves
// its root once symlinks are followed, names a dotfile, or (for openIn) is not a regular
// file (opening a FIFO would block the request, a device could stream forever).
var errNotServable = errors.New("not servable")

// validName reports whether name, a slash-separated path below a root ("" for the root
// itself), may be served: every element is non-empty, is not a dotfile (which also rules out
// "." and ".."), and holds no backslash or NUL, which some systems read as a separator or a
// terminator. Requests are decoded before this check, so %2e%2e and %2f are caught here too.
func validName(name string) bool {
	if name == "" {
		return true
	}
	for elem := range strings.SplitSeq(name, "/") {
		if elem == "" || elem[0] == '.' || strings.ContainsAny(elem, "\\\x00") {
			return false
		}
	}
	return true
}

// statIn follows every symlink in name below root and returns the resolved root, the
// resolved path relative to it (never outside it, never through a dotfile) and what that
// path is (callers check the kind). Symlinks that stay inside the root are fine; the root
// itself may be a symlink.
func statIn(root, name string) (realRoot, rel string, info fs.FileInfo, err error) {
	if !validName(name) {
		return "", "", nil, fs.ErrNotExist
	}
	// Resolved per call rather than once at startup: the models dir may be created (or
	// re-pointed) after the server starts, and it must compare against what the link is now.
	realRoot, err = filepath.EvalSymlinks(root)
	if err != nil {
		return "", "", nil, err
	}
	local := "."
	if name != "" {
		if local, err = filepath.Localize(name); err != nil {
			return "", "", nil, fs.ErrNotExist
		}
	}
	real, err := filepath.EvalSymlinks(filepath.Join(realRoot, local))
	if err != nil {
		return "", "", nil, err
	}
	rel, err = filepath.Rel(realRoot, real)
	if err != nil || !filepath.IsLocal(rel) || (rel != "." && !validName(filepath.ToSlash(rel))) {
		return "", "", nil, errNotServable
	}
	if info, err = os.Stat(real); err != nil {
		return "", "", nil, err
	}
	return realRoot, rel, info, nil
}

// openIn opens the regular file name below root, under the rules of statIn. The file is
// opened through os.Root at the already resolved path, so a symlink swapped in between the
// check and the open cannot lead outside the root either.
func openIn(root, name string) (*os.File, fs.FileInfo, error) {
	realRoot, rel, info, err := statIn(root, name)
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, nil, errNotServable
	}
	r, err := os.OpenRoot(realRoot)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close() // files opened through r stay open
	f, err := r.Open(rel)
	if err != nil {
		return nil, nil, err
	}
	// Describe the file actually opened, not the one stat'ed a moment ago.
	if info, err = f.Stat(); err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, errNotServable
	}
	return f, info, nil
}
