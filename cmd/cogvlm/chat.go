package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/tokenizer"
)

type chatOpts struct {
	model, image, template string
	sampling               model.Sampling
	json                   bool
}

func chatFlags(fs *flag.FlagSet) func(env) error {
	var o chatOpts
	fs.StringVar(&o.model, "model", "", modelFlagDoc)
	fs.StringVar(&o.image, "image", "", "image `FILE` (PNG, JPEG, GIF, WebP) the conversation is about; /image changes it")
	fs.StringVar(&o.template, "template", "", templateFlagDoc)
	samplingFlags(fs, &o.sampling)
	fs.BoolVar(&o.json, "json", false, "print one JSON line per answer (generate --json's) instead of streaming the text")
	return func(e env) error { return chat(e, o) }
}

const chatDoc = `A conversation on the CPU reference: each line of stdin is a question, answered with
the earlier turns as history (as generate --history would put them). A follow-up costs only
its new tokens: the keys and values of the conversation so far stay in the KV cache, and
the prompt's longest common prefix of token ids with them is reused (with the same answer
as a fresh run). A line of timings per answer goes to stderr.
Commands: /image FILE (another image: a new conversation), /reset (a new conversation),
/quit. Ctrl+C stops an answer (what it said so far stays in the history) without leaving;
Ctrl+D or the end of stdin leaves.
`

// onInterrupt calls handle at each Ctrl+C until the returned function is called (tests
// replace it to interrupt at a point of their choosing).
var onInterrupt = func(handle func()) (stop func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-c:
				handle()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(c); close(done) }
}

// chatSession is one conversation's state: the model and its KV cache, the image, the
// turns so far.
type chatSession struct {
	e        env
	o        chatOpts
	cfg      model.Config
	tok      *tokenizer.Tokenizer
	m        *model.Model
	pixels   []float32 // the image's pixel values; nil for text only
	template string
	history  [][2]string
	loadTime time.Duration // reported with the first answer's --json stats

	generating atomic.Bool // an answer is being computed
	stop       atomic.Bool // Ctrl+C during the answer
}

func chat(e env, o chatOpts) error {
	switch {
	case o.model == "":
		return usagef("--model is required")
	case o.template != "" && !slices.Contains(model.Templates, o.template):
		return usagef("unknown --template %q (want one of %s)", o.template, strings.Join(model.Templates, ", "))
	}
	if _, err := model.NewSampler(o.sampling, 1); err != nil {
		return usageError{err.Error()}
	}
	cfg, err := loadConfig(o.model)
	if err != nil {
		return err
	}
	if err := applyGenerationConfig(filepath.Join(o.model, "generation_config.json"), e.set, &o.sampling); err != nil {
		return err
	}
	tok, err := tokenizer.Load(o.model)
	if err != nil {
		return named(o.model, err)
	}
	s := &chatSession{e: e, o: o, cfg: cfg, tok: tok}
	if err := s.setImage(o.image); err != nil { // before the weights: a bad file fails at once
		return err
	}
	start := time.Now()
	if s.m, err = loadModel(o.model, cfg); err != nil {
		return err
	}
	s.loadTime = time.Since(start)
	s.m.Stop = s.stop.Load // Ctrl+C during a long prefill stops it between layers

	interactive := isTerminal(e.stdin)
	defer onInterrupt(func() {
		switch {
		case s.generating.Load():
			s.stop.Store(true)
		case interactive:
			fmt.Fprint(e.stderr, "\n(Ctrl+C stops an answer; /quit or Ctrl+D leaves)\n> ")
		default:
			os.Exit(130) // piped, no answer running, nothing half-written: leave as a shell would
		}
	})()

	if interactive {
		fmt.Fprintf(e.stderr, "cogvlm chat: %s%s. /image FILE, /reset, /quit; Ctrl+C stops an answer.\n", o.model, s.imageNote())
	}
	in := bufio.NewScanner(e.stdin)
	// a longer line cannot fit the context: model.MaxPromptBytes
	in.Buffer(make([]byte, 0, 64<<10), model.MaxPromptBytes(cfg)+1)
	for {
		if interactive {
			fmt.Fprint(e.stderr, "> ")
		}
		if !in.Scan() {
			if errors.Is(in.Err(), bufio.ErrTooLong) {
				return fmt.Errorf("stdin: a line of more than %d bytes cannot fit max_position_embeddings %d", model.MaxPromptBytes(cfg), cfg.MaxPositionEmbeddings)
			}
			return in.Err()
		}
		line := strings.TrimSpace(in.Text())
		quit, err := s.handle(line)
		if quit {
			return nil
		}
		if err != nil {
			if !interactive {
				return err // a script wants to know
			}
			fmt.Fprintf(e.stderr, "cogvlm chat: %s\n", oneLine(err.Error()))
		}
	}
}

// handle runs one line: a command or a question. quit reports /quit.
func (s *chatSession) handle(line string) (quit bool, err error) {
	command, arg, _ := strings.Cut(line, " ")
	switch {
	case line == "":
		return false, nil
	case command == "/quit" || command == "/exit":
		return true, nil
	case command == "/reset":
		s.reset()
		fmt.Fprintln(s.e.stderr, "(a new conversation)")
		return false, nil
	case command == "/image":
		if err := s.setImage(strings.TrimSpace(arg)); err != nil {
			return false, err
		}
		s.reset()
		fmt.Fprintf(s.e.stderr, "(a new conversation%s)\n", s.imageNote())
		return false, nil
	case strings.HasPrefix(command, "/") && !strings.Contains(command[1:], "/"):
		return false, fmt.Errorf("unknown command %s (want /image FILE, /reset or /quit)", command)
	}
	return false, s.answer(line)
}

// setImage reads the conversation's image (none for ""), and picks the template for it.
func (s *chatSession) setImage(path string) error {
	s.pixels = nil
	if path != "" {
		pixels, err := preprocessImage(path, s.cfg.Vision.ImageSize)
		if err != nil {
			return err
		}
		s.pixels = pixels
	}
	s.o.image = path
	s.template = s.o.template
	if s.template == "" {
		s.template = model.DefaultTemplate(s.cfg, s.pixels != nil)
	}
	return nil
}

func (s *chatSession) imageNote() string {
	if s.o.image == "" {
		return ", no image"
	}
	return ", image " + s.o.image
}

// reset starts a new conversation: no history, an empty KV cache.
func (s *chatSession) reset() {
	s.history = nil
	if s.m != nil {
		s.m.ResetCache()
	}
}

// answer generates the answer to query after the history, streams it, and adds the turn
// to the history (a stopped answer with what it said so far).
func (s *chatSession) answer(query string) error {
	cfg := s.cfg
	in, err := model.PromptInputs(s.tok, s.template, query, s.history, s.pixels != nil, cfg)
	if err != nil {
		return err
	}
	sampling := s.o.sampling
	capMaxNewTokens(s.e.set, &sampling, len(in.InputIDs), cfg)
	if err := model.CheckContextLength(len(in.InputIDs), sampling.MaxNewTokens, cfg); err != nil {
		return fmt.Errorf("%v: /reset starts a new conversation", err)
	}

	stream := s.tok.NewStreamDecoder()
	var writeErr error
	s.stop.Store(false)
	s.generating.Store(true)
	res, err := s.m.Generate(in, s.pixels, sampling, func(id int) bool {
		if !s.o.json {
			_, writeErr = fmt.Fprint(s.e.stdout, stream.Push(id))
		}
		return writeErr == nil && !s.stop.Load()
	})
	s.generating.Store(false)
	if errors.Is(err, model.ErrStopped) {
		fmt.Fprintln(s.e.stderr, "(stopped before the first token)")
		return nil
	}
	if err != nil {
		return err
	}
	if writeErr != nil {
		return fmt.Errorf("writing to stdout: %v", writeErr)
	}
	text := s.tok.Decode(res.GeneratedIDs)
	s.history = append(s.history, [2]string{query, text})
	if s.o.json {
		boxes, err := answerBoxes(generateOpts{image: s.o.image}, text)
		if err != nil {
			return err
		}
		err = writeJSONResult(s.e, res, text, boxes, s.loadTime)
		s.loadTime = 0
		return err
	}
	if _, err := fmt.Fprintln(s.e.stdout, stream.Flush()); err != nil {
		return err
	}
	stopped := ""
	if res.StopReason == model.StopCallback {
		stopped = "stopped; "
	}
	st := res.Stats
	fmt.Fprintf(s.e.stderr, "[%sfirst token %s; prompt %d tokens: %d reused, %d prefilled; %d tokens]\n",
		stopped, st.FirstToken.Round(time.Millisecond), st.ReusedTokens+st.PrefillTokens, st.ReusedTokens, st.PrefillTokens, len(res.GeneratedIDs))
	return nil
}

// isTerminal reports whether r is an interactive terminal (not a pipe or a file).
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
