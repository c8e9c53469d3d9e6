//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package pkg

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeMarker makes dir a partial folder as a converter that was killed leaves it: the
// marker with its content, no lock held.
func writeMarker(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, partialMarker), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shard-00000.bin"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A conversion removes the partial folders that killed conversions to the same out left,
// and nothing else: not a live conversion's, not a folder without our marker, not a
// symlink, not another out's.
func TestConvertRemovesStalePartials(t *testing.T) {
	root := t.TempDir()
	out := filepath.Join(root, "out")
	elsewhere := filepath.Join(root, "elsewhere")
	writeMarker(t, elsewhere, partialMagic+"pid 1\n")

	writeMarker(t, out+".partial-111", partialMagic+"pid 1\n") // killed: removed
	killed, err := newPartial(out)                             // killed after its start: removed
	if err != nil {
		t.Fatal(err)
	}
	killed.release()
	live, err := newPartial(out) // still converting: kept
	if err != nil {
		t.Fatal(err)
	}
	defer live.remove()
	keep := []string{
		filepath.Base(live.path),
		"elsewhere",
		"out.partial-222",   // no marker: not ours to judge
		"out.partial-333",   // a marker of the same name, not ours
		"out.partial-444",   // a symlink to a stale-looking folder
		"out.partial-x55",   // not a name MkdirTemp makes
		"other.partial-666", // another output's
		"out.partial-",
	}
	if err := os.MkdirAll(filepath.Join(root, "out.partial-222"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeMarker(t, filepath.Join(root, "out.partial-333"), "something else\n")
	if err := os.Symlink(elsewhere, filepath.Join(root, "out.partial-444")); err != nil {
		t.Fatal(err)
	}
	writeMarker(t, filepath.Join(root, "out.partial-x55"), partialMagic)
	writeMarker(t, filepath.Join(root, "other.partial-666"), partialMagic)
	writeMarker(t, filepath.Join(root, "out.partial-"), partialMagic)

	if err := Convert(goldenModelDir, out, ConvertOptions{}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := append(keep, "out")
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after Convert the folder holds\n %q\nwant\n %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, partialMarker)); err != nil {
		t.Errorf("the symlink's target was touched: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(out, partialMarker)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the package keeps the marker: %v", err)
	}
}

// A cancelled conversion says why, in words, not "context canceled".
func TestConvertInterruptedMessage(t *testing.T) {
	root := t.TempDir()
	out := filepath.Join(root, "out")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("terminated signal received")) // what signal.NotifyContext gives
	err := Convert(goldenModelDir, out, ConvertOptions{Context: ctx})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want one that is context.Canceled", err)
	}
	want := "conversion stopped before it finished (terminated signal received); nothing was written to " + out
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	ctx, stop := context.WithCancel(context.Background())
	stop()
	if err := Convert(goldenModelDir, out, ConvertOptions{Context: ctx}); err == nil || strings.Contains(err.Error(), "context canceled") {
		t.Errorf("plain cancel: error %v, want it in words", err)
	}
	if names := listDir(t, root); !slices.Equal(names, []string{"."}) {
		t.Errorf("cancelled Convert left %v", names)
	}
}
