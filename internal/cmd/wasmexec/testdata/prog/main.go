//go:build js && wasm

// A program for the runner's own test: it writes to stdout and stderr, then exits with
// the code given as its first argument (or hangs, or panics).
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	fmt.Println("out: héllo 世界")
	fmt.Fprintln(os.Stderr, "err: line")
	switch os.Args[1] {
	case "panic":
		panic("boom")
	case "hang":
		select {}
	}
	code, _ := strconv.Atoi(os.Args[1])
	os.Exit(code)
}
