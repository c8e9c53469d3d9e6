// Command cogvlm runs CogVLM's float32 CPU reference from the command line: it answers a
// query about an image (generate), prints token ids (tokenize) and writes the tiny demo
// checkpoint (demo-model). Its flags and output are a contract other tools rely on (see
// DESIGN.md, "CLI cmd/cogvlm").
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
