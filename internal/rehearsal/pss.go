package rehearsal

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// KindPSS is the memory of the browser's processes of one kind: their proportional set
// size (PSS: a page shared by n processes counts 1/n in each, so the kinds add up to the
// whole honestly), and the part of it that is shared memory (Chromium's transfer buffers
// between processes: WebGPU commands and their data go from the renderer to the GPU
// process through them).
type KindPSS struct {
	PSS       int64 `json:"pss"`
	Shmem     int64 `json:"shmem"`
	Processes int   `json:"processes"`
}

// Breakdown is the browser's PSS by kind of process: "browser" (the main process),
// "gpu-process" (WebGPU's device: SwiftShader's buffers are its memory), "renderer" (the
// page and its workers: the engine's worker holds the shards' ArrayBuffers), "utility:X"
// (the network service, storage service, …: X is Chromium's service name), "zygote".
type Breakdown map[string]KindPSS

// Total is the PSS of all the processes.
func (b Breakdown) Total() int64 {
	var n int64
	for _, k := range b {
		n += k.PSS
	}
	return n
}

// String lists the kinds by size: "gpu-process 1.52 GB (shmem 0.10), renderer 0.61 GB, …".
func (b Breakdown) String() string {
	kinds := make([]string, 0, len(b))
	for k := range b {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return b[kinds[i]].PSS > b[kinds[j]].PSS })
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s %.3f GB", k, gb(b[k].PSS))
		if b[k].Shmem > 0 {
			parts[i] += fmt.Sprintf(" (shmem %.3f)", gb(b[k].Shmem))
		}
	}
	return strings.Join(parts, ", ")
}

// PSSSample is one reading of the browser's memory, T seconds after the sampler started.
type PSSSample struct {
	T     float64
	Kinds Breakdown
}

// pssSampler reads the PSS of this process's descendants, but for the server, by kind of
// process, four times a second, and keeps the peak of the total with its breakdown (over
// the run and per phase) and each kind's own peak.
type pssSampler struct {
	mu        sync.Mutex
	start     time.Time
	peak      Breakdown // at the run's peak total
	phasePeak Breakdown // at the peak total since the last phase()
	kindPeak  Breakdown // each kind's largest reading (not at one moment)
	timeline  []PSSSample
	keep      bool // keep every reading in timeline
	quit      chan struct{}
	done      chan struct{}
	once      sync.Once
}

func startPSSSampler(exclude int, keepTimeline bool) *pssSampler {
	s := &pssSampler{start: time.Now(), keep: keepTimeline, kindPeak: Breakdown{}, quit: make(chan struct{}), done: make(chan struct{})}
	self := os.Getpid()
	go func() {
		defer close(s.done)
		for {
			b := descendantsPSS(self, exclude)
			s.mu.Lock()
			if b.Total() > s.peak.Total() {
				s.peak = b
			}
			if b.Total() > s.phasePeak.Total() {
				s.phasePeak = b
			}
			for k, v := range b {
				if v.PSS > s.kindPeak[k].PSS {
					s.kindPeak[k] = v
				}
			}
			if s.keep {
				s.timeline = append(s.timeline, PSSSample{T: time.Since(s.start).Seconds(), Kinds: b})
			}
			s.mu.Unlock()
			select {
			case <-s.quit:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return s
}

// phase returns the breakdown at the peak since the last call (or the start) and starts
// a new phase.
func (s *pssSampler) phase() Breakdown {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.phasePeak
	s.phasePeak = nil
	return p
}

// stop ends the sampling and returns the breakdown at the run's peak and each kind's peak.
func (s *pssSampler) stop() (atPeak, kindPeak Breakdown) {
	s.once.Do(func() { close(s.quit); <-s.done })
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.kindPeak
}

// readings returns the timeline so far (kept only when the sampler was started to).
func (s *pssSampler) readings() []PSSSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.timeline)
}

// idlePSS is the browser's PSS at rest (the page open, nothing loading): the median of five
// readings over a second, after two seconds to settle.
func idlePSS(exclude int) int64 {
	time.Sleep(2 * time.Second)
	var v []int64
	for i := 0; i < 5; i++ {
		v = append(v, descendantsPSS(os.Getpid(), exclude).Total())
		time.Sleep(250 * time.Millisecond)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// descendantsPSS is the PSS of every process below root (root excluded) by kind, skipping
// the subtree of exclude.
func descendantsPSS(root, exclude int) Breakdown {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so split after the last ')'
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	out := Breakdown{}
	var walk func(pid int)
	walk = func(pid int) {
		for _, c := range children[pid] {
			if c == exclude {
				continue
			}
			if pss, shmem, ok := readPSS(c); ok {
				kind := processKind(c)
				k := out[kind]
				k.PSS += pss
				k.Shmem += shmem
				k.Processes++
				out[kind] = k
			}
			walk(c)
		}
	}
	walk(root)
	return out
}

// processKind names a Chromium process by its --type flag (and a utility process by its
// service): "browser" for the main process, which has none.
func processKind(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return "unknown"
	}
	// Chromium rewrites its children's command lines into one string (setproctitle), so
	// the arguments are split at spaces as well as NULs.
	args := strings.Fields(strings.ReplaceAll(string(b), "\x00", " "))
	if len(args) == 0 {
		return "unknown"
	}
	return kindOf(args)
}

// kindOf is processKind for a command line.
func kindOf(args []string) string {
	var typ, sub string
	for _, a := range args[1:] {
		if v, ok := strings.CutPrefix(a, "--type="); ok {
			typ = v
		}
		if v, ok := strings.CutPrefix(a, "--utility-sub-type="); ok {
			sub = v[strings.LastIndexByte(v, '.')+1:]
		}
	}
	base := filepath.Base(args[0])
	switch {
	case typ == "" && strings.Contains(base, "crashpad"):
		return "crashpad"
	case typ == "" && strings.Contains(base, "chrom"):
		return "browser"
	case typ == "":
		return base
	case typ == "utility" && sub != "":
		return "utility:" + sub
	}
	return typ
}

// readPSS reads a process's PSS and the shared-memory part of it (smaps_rollup).
func readPSS(pid int) (pss, shmem int64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, false
	}
	kb := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		return n * 1024
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "Pss:"); found {
			pss, ok = kb(v), true
		} else if v, found := strings.CutPrefix(line, "Pss_Shmem:"); found {
			shmem = kb(v)
		}
	}
	return pss, shmem, ok
}
