package pkg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// A conversion writes into out.partial-NNNN next to out and renames it into place at the
// end. Cancelled or failed, it removes the folder itself; killed (SIGKILL, a crash, a power
// cut) it cannot, so the next conversion to the same out removes the partial folders that
// earlier conversions left, and only those: a folder is stale when it holds partialMarker,
// written by a converter, and no process holds the lock on that marker any more (the
// kernel drops a lock with its process). A partial folder of a conversion still running,
// one without the marker, one of another user, a symlink or a name of another shape is left
// alone. Where file locks are not available (lockFile returns errors.ErrUnsupported) no
// marker is written and nothing is ever removed.

// partialMarker is the file in a partial folder that names its owner; it is removed from
// the package once it is in place. A dotfile: the server never serves one.
const partialMarker = ".cogvlm-convert-partial"

// partialMagic starts the marker's content, so that a file of the same name that some
// other tool made is not taken for ours.
const partialMagic = "cogvlm convert partial package\n"

// partialDir is a conversion's working folder, with its marker's lock held.
type partialDir struct {
	path string
	lock *os.File // the marker, locked; nil without file locks
}

// newPartial creates the working folder for out, readable by all (a package is served to
// browsers), with its marker locked. The marker is written and locked under a temporary
// name and renamed into place, so a cleaner never sees an unlocked marker of a live
// conversion.
func newPartial(out string) (p *partialDir, err error) {
	dir, err := os.MkdirTemp(filepath.Dir(out), filepath.Base(out)+".partial-")
	if err != nil {
		return nil, err
	}
	p = &partialDir{path: dir}
	defer func() {
		if err != nil {
			p.remove()
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil { // MkdirTemp makes it private
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".marker-")
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); errors.Is(err, errors.ErrUnsupported) {
		f.Close()
		return p, os.Remove(f.Name())
	} else if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %v", f.Name(), err)
	}
	p.lock = f
	if _, err := fmt.Fprintf(f, "%spid %d\n", partialMagic, os.Getpid()); err != nil {
		return nil, err
	}
	return p, os.Rename(f.Name(), filepath.Join(dir, partialMarker))
}

// remove deletes the working folder (a failed or cancelled conversion) and drops the lock.
func (p *partialDir) remove() {
	os.RemoveAll(p.path)
	p.release()
}

// installed drops the marker from the package now at out and the lock. A crash in between
// leaves only a dotfile in the package, which nothing reads.
func (p *partialDir) installed(out string) {
	if p.lock != nil {
		os.Remove(filepath.Join(out, partialMarker))
	}
	p.release()
}

func (p *partialDir) release() {
	if p.lock != nil {
		p.lock.Close()
		p.lock = nil
	}
}

// removeStalePartials removes the partial folders that conversions to out left behind
// when they were killed (see above). It is best effort: what it cannot check or remove
// stays.
func removeStalePartials(out string) {
	dir, prefix := filepath.Dir(out), filepath.Base(out)+".partial-"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || suffix == "" || strings.Trim(suffix, "0123456789") != "" { // MkdirTemp's digits
			continue
		}
		removeIfStale(filepath.Join(dir, e.Name()))
	}
}

// removeIfStale removes the partial folder path if it is ours and its converter is gone.
func removeIfStale(path string) {
	info, err := os.Lstat(path)
	if err != nil || !info.IsDir() || !ownedByUs(info) {
		return // a symlink, a file, or another user's
	}
	marker := filepath.Join(path, partialMarker)
	if mi, err := os.Lstat(marker); err != nil || !mi.Mode().IsRegular() {
		return
	}
	f, err := os.Open(marker)
	if err != nil {
		return
	}
	defer f.Close()
	head := make([]byte, len(partialMagic))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != partialMagic {
		return
	}
	if lockFile(f) != nil {
		return // its converter still runs (or locks do not work here)
	}
	// Held until the folder is gone; no converter reuses a partial folder's name.
	os.RemoveAll(path)
}

// interruptedError is a conversion stopped by its context: it says why (the signal, from
// signal.NotifyContext's cause) and that out was not touched, rather than "context
// canceled". errors.Is still sees the context's error.
type interruptedError struct {
	out   string
	cause error
	err   error
}

func (e interruptedError) Error() string {
	why := "cancelled"
	// A plain cancel's cause is context.Canceled itself; a signal's is its own error (which
	// errors.Is also matches to context.Canceled, hence the comparison).
	switch {
	case errors.Is(e.err, context.DeadlineExceeded):
		why = "out of time"
	case e.cause != nil && e.cause != context.Canceled:
		why = e.cause.Error() // "interrupt signal received", "terminated signal received"
	}
	return fmt.Sprintf("conversion stopped before it finished (%s); nothing was written to %s", why, e.out)
}

func (e interruptedError) Unwrap() error { return e.err }
