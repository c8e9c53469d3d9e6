package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // bad input: a file, tensor or value, named in the one-line message
	exitUsage = 2 // bad command line
)

// command is one subcommand. run parses args with fs (already holding the flags) and does
// the work; a usageError from it means exit 2.
type command struct {
	name, summary string
	doc           string // more help, printed before the flags
	flags         func(fs *flag.FlagSet) func(env) error
}

// env is what a command reads and writes, so tests run commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// set reports whether a flag was given on the command line.
	set map[string]bool
}

var commands = []command{
	{"generate", "answer a query, optionally about an image, with the CPU reference", generateDoc, generateFlags},
	{"chat", "a conversation in the terminal, one question per line, reusing the KV cache", chatDoc, chatFlags},
	{"tokenize", "print the token ids of JSON strings read from stdin, one per line", tokenizeDoc, tokenizeFlags},
	{"convert", "convert a Hugging Face checkpoint into a browser package", convertDoc, convertFlags},
	{"accuracy", "compare a package's logits with its reference checkpoint", accuracyDoc, accuracyFlags},
	{"demo-model", "write a random-weights checkpoint: the tiny demo, or a published layout", demoModelDoc, demoModelFlags},
}

// usageError is a bad command line: exit 2 with the usage text.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func mainUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: cogvlm <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'cogvlm <command> -h' for the flags of a command.")
}

// run is the whole program: it returns the exit code. Every failure is one line on
// stderr; a panic is caught here and reported the same way, never as a trace.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "cogvlm: internal error: %s\n", oneLine(fmt.Sprint(r)))
			code = exitError
		}
	}()
	if len(args) == 0 {
		mainUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		mainUsage(stdout)
		return exitOK
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "cogvlm: unknown command %q\n", args[0])
		mainUsage(stderr)
		return exitUsage
	}

	fs := flag.NewFlagSet("cogvlm "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported below, in our format
	do := cmd.flags(fs)
	cmdUsage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: cogvlm %s [flags]\n%s\n\n%s\nflags:\n", cmd.name, cmd.summary, cmd.doc)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	err := fs.Parse(args[1:])
	if errors.Is(err, flag.ErrHelp) {
		cmdUsage(stdout)
		return exitOK
	}
	if err == nil && fs.NArg() > 0 {
		err = usagef("unexpected argument %q", fs.Arg(0))
	}
	e := env{stdin: stdin, stdout: stdout, stderr: stderr, set: map[string]bool{}}
	fs.Visit(func(f *flag.Flag) { e.set[f.Name] = true })
	if err == nil {
		err = do(e)
		if err == nil {
			return exitOK
		}
		if _, ok := err.(usageError); !ok {
			fmt.Fprintf(stderr, "cogvlm %s: %s\n", cmd.name, oneLine(err.Error()))
			return exitError
		}
	}
	fmt.Fprintf(stderr, "cogvlm %s: %s\n", cmd.name, oneLine(err.Error()))
	cmdUsage(stderr)
	return exitUsage
}

// oneLine keeps a message on one line, whatever a library put in it.
func oneLine(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\r\n", "; ", "\n", "; ", "\r", "; ").Replace(s))
}

// named prefixes err with path unless the message already names it (os errors and the
// safetensors package do), so every message names the file once.
func named(path string, err error) error {
	if err == nil || strings.Contains(err.Error(), path) {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}
