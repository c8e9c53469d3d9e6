package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeClock advances only when told to.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestBar(terminal bool) (*Bar, *bytes.Buffer, *fakeClock) {
	var buf bytes.Buffer
	clock := &fakeClock{time.Unix(1000, 0)}
	b := &Bar{w: &buf, label: "convert", terminal: terminal, now: clock.now}
	b.start = clock.now()
	return b, &buf, clock
}

func TestBarTerminal(t *testing.T) {
	b, buf, clock := newTestBar(true)
	clock.t = clock.t.Add(2 * time.Second)
	b.Update(250e6, 1e9)
	want := "\rconvert [#######.......................]  25% 250.0 MB/1.0 GB 125.0 MB/s ETA 6s"
	if got := buf.String(); got != want {
		t.Fatalf("first draw %q, want %q", got, want)
	}
	// within 100 ms of the last draw: no redraw
	clock.t = clock.t.Add(50 * time.Millisecond)
	b.Update(260e6, 1e9)
	if buf.Len() != len(want) {
		t.Fatalf("redrew within 100 ms: %q", buf.String()[len(want):])
	}
	// the last byte always draws, blanking the longer previous line
	b.Update(1e9, 1e9)
	b.Finish()
	lines := strings.Split(buf.String(), "\r")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "convert [##############################] 100% 1.0 GB/1.0 GB") ||
		!strings.Contains(last, " in 2s") || !strings.HasSuffix(last, "\n") {
		t.Errorf("final line %q", last)
	}
}

// TestDrawBlanksLeftovers: a shorter line is padded so the longer one before it leaves
// nothing on screen.
func TestDrawBlanksLeftovers(t *testing.T) {
	b, buf, _ := newTestBar(true)
	b.draw("1.0 MB/s ETA 1h02m")
	b.draw("done")
	if got, want := buf.String(), "\r1.0 MB/s ETA 1h02m\rdone              "; got != want {
		t.Errorf("drew %q, want %q", got, want)
	}
}

func TestBarNotTerminal(t *testing.T) {
	b, buf, clock := newTestBar(false)
	for i := range 10 {
		clock.t = clock.t.Add(time.Second)
		b.Update(int64(i+1)*1e8, 1e9)
	}
	if buf.Len() != 0 {
		t.Fatalf("wrote %q before Finish to a non-terminal", buf.String())
	}
	b.Finish()
	if got, want := buf.String(), "convert [##############################] 100% 1.0 GB/1.0 GB 100.0 MB/s in 10s\n"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

func TestIsTerminal(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a bytes.Buffer is not a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is not a terminal")
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {999, "999 B"}, {1000, "1.0 kB"}, {1500, "1.5 kB"}, {999_949, "999.9 kB"}, {999_950, "1.0 MB"}, {35_200_000_000, "35.2 GB"}, {5e15, "5000.0 TB"}} {
		if got := Bytes(tc.n); got != tc.want {
			t.Errorf("Bytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "0s"}, {1400 * time.Millisecond, "1s"}, {59 * time.Second, "59s"}, {725 * time.Second, "12m05s"}, {7380 * time.Second, "2h03m"}} {
		if got := Duration(tc.d); got != tc.want {
			t.Errorf("Duration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
