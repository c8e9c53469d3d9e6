// Command wgsl writes the WGSL modules the engine compiles: each op's file with the shared
// files shaders.Source joins onto it, for tools outside Go (bench/run-peer.sh) that must
// run exactly that WGSL.
//
//	wgsl NAME            the module of op file NAME (e.g. matvec_q4.wgsl) to stdout
//	wgsl -o DIR NAME...  each module to DIR/NAME
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cogvlm-web/cogvlm-web/shaders"
)

func main() {
	dir := flag.String("o", "", "write each module to `DIR`/NAME instead of stdout")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: wgsl NAME | wgsl -o DIR NAME...\nop files:", shaders.Names())
	}
	flag.Parse()
	if err := run(*dir, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "wgsl:", err)
		os.Exit(1)
	}
}

func run(dir string, names []string) error {
	if len(names) == 0 || (dir == "" && len(names) > 1) {
		flag.Usage()
		return fmt.Errorf("want one op file name, or -o DIR and one or more")
	}
	for _, n := range names {
		src, err := shaders.Source(n)
		if err != nil {
			return err
		}
		if dir == "" {
			_, err = os.Stdout.WriteString(src)
		} else {
			err = os.WriteFile(filepath.Join(dir, n), []byte(src), 0o644)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
