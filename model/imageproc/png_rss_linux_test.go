package imageproc

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
)

// The peak resident memory of decoding a 16-bit 8000×8000 PNG, in a child process:
// COGVLM_PNG_PEAK=1 go test -run TestPNGPeakRSS -v ./model/imageproc
func TestPNGPeakRSS(t *testing.T) {
	if os.Getenv("COGVLM_PNG_PEAK") == "" {
		t.Skip("set COGVLM_PNG_PEAK=1 to measure (decodes 64 megapixels)")
	}
	if path := os.Getenv("COGVLM_PNG_PEAK_FILE"); path != "" { // the child
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		decode := Decode
		if os.Getenv("COGVLM_PNG_PEAK_LEGACY") != "" {
			decode = func(r io.Reader, limit int) (*RGB, error) { b, _ := io.ReadAll(r); return legacyPNG(b, limit) }
		}
		if _, err := decode(bytes.NewReader(data), 0); err != nil {
			t.Fatal(err)
		}
		return
	}
	path := t.TempDir() + "/big16.png"
	if err := os.WriteFile(path, bigPNG16(t, 8000, 8000), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, legacy := range []string{"", "1"} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestPNGPeakRSS$")
		cmd.Env = append(os.Environ(), "COGVLM_PNG_PEAK_FILE="+path, "COGVLM_PNG_PEAK_LEGACY="+legacy)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
		name := map[string]string{"": "decodePNG", "1": "image/png + toRGB"}[legacy]
		t.Logf("%s: peak RSS %s MB", name, strconv.FormatFloat(float64(rss)/1024, 'f', 0, 64))
	}
}
