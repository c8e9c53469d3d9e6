// Package progress draws a one-line progress bar with rate and ETA for long byte-counting
// jobs (the converter, downloads). It redraws in place only when writing to a terminal;
// to a file or pipe it writes one summary line when the job ends, so logs stay clean.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// redrawEvery throttles redraws: a converter reports thousands of tensors, a terminal
// needs a few updates a second.
const redrawEvery = 100 * time.Millisecond

// barWidth is the number of cells of the bar itself.
const barWidth = 30

// Bar is a progress bar for a job measured in bytes. Update is its callback; Finish ends
// the line. Not safe for concurrent use.
type Bar struct {
	w        io.Writer
	label    string
	terminal bool             // redraw in place; otherwise only the summary line
	now      func() time.Time // the clock, replaceable in tests
	start    time.Time
	drawn    time.Time // last redraw
	done     int64
	total    int64
	width    int // length of the last line drawn, to blank what a shorter one leaves
}

// New returns a bar labelled label that writes to w; it redraws only if w is a terminal.
func New(w io.Writer, label string) *Bar {
	b := &Bar{w: w, label: label, terminal: IsTerminal(w), now: time.Now}
	b.start = b.now()
	return b
}

// IsTerminal reports whether w is a character device such as a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Update records done of total bytes and redraws at most every 100 ms (always for the
// last byte). Its signature is the converter's progress callback.
func (b *Bar) Update(done, total int64) {
	b.done, b.total = done, total
	if !b.terminal {
		return
	}
	if now := b.now(); now.Sub(b.drawn) >= redrawEvery || done >= total {
		b.drawn = now
		b.draw(b.line(now))
	}
}

// Finish draws the final state and ends the line (on a terminal), or writes the summary
// line (elsewhere).
func (b *Bar) Finish() {
	line := b.line(b.now())
	if b.terminal {
		b.draw(line)
	} else {
		fmt.Fprint(b.w, line)
	}
	fmt.Fprintln(b.w)
}

// draw replaces the current terminal line with line.
func (b *Bar) draw(line string) {
	pad := max(b.width-len(line), 0)
	fmt.Fprint(b.w, "\r"+line+strings.Repeat(" ", pad))
	b.width = len(line)
}

// line is "label [#####.....]  42% 1.2/2.9 GB 85.3 MB/s ETA 20s".
func (b *Bar) line(now time.Time) string {
	elapsed := now.Sub(b.start)
	frac := 0.0
	if b.total > 0 {
		frac = min(max(float64(b.done)/float64(b.total), 0), 1)
	}
	cells := int(frac * barWidth)
	bar := strings.Repeat("#", cells) + strings.Repeat(".", barWidth-cells)
	s := fmt.Sprintf("%s [%s] %3.0f%% %s/%s", b.label, bar, 100*frac, Bytes(b.done), Bytes(b.total))
	if elapsed <= 0 || b.done <= 0 {
		return s
	}
	rate := float64(b.done) / elapsed.Seconds()
	s += fmt.Sprintf(" %s/s", Bytes(int64(rate)))
	if b.done < b.total {
		eta := time.Duration(float64(b.total-b.done) / rate * float64(time.Second))
		s += " ETA " + Duration(eta)
	} else {
		s += " in " + Duration(elapsed)
	}
	return s
}

// Bytes formats n with a decimal unit: "512 B", "1.5 kB", "35.2 GB".
func Bytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, unit := range []string{"kB", "MB", "GB", "TB"} {
		v /= 1000
		if v < 999.95 || unit == "TB" {
			return fmt.Sprintf("%.1f %s", v, unit)
		}
	}
	panic("unreachable")
}

// Duration formats d rounded to what a person needs: "45s", "12m05s", "2h03m".
func Duration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s/60%60)
}
