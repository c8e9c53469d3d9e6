// Command server serves the cogvlm-web app and converted model packages on localhost:
//
//	go run ./server [--addr 127.0.0.1:8080] [--models DIR] [--web DIR] [--allow-host NAME,...] [--hub URL|none] [--log]
//
// The app (--web, default "web") is served at /, the packages in --models (default
// "models") under /models/<name>/, and /models/index.json lists those packages. Every
// response carries the headers that make the page cross-origin isolated and lock it to its
// own origin. Only requests for localhost names, the listening address and the names
// given with --allow-host are answered (DNS rebinding, see host.go). On start it prints
// one line, "serving http://HOST:PORT/ (models: DIR)", with the port actually bound;
// SIGINT or SIGTERM shut it down gracefully. --hub names the hub the page may convert
// checkpoints from (hub.go): its hosts join the CSP's connect-src, and /hub.json tells the
// page; --hub none keeps the page to its own origin.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// shutdownTimeout bounds how long in-flight requests (a shard download can take minutes)
// may finish after a signal before their connections are cut.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, stop, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program: it serves until ctx is done and returns the exit status
// (0 after a shutdown, 1 on failure, 2 on bad usage). Once ctx is done it calls
// releaseSignals, so that a second Ctrl-C kills a shutdown that takes too long.
func run(ctx context.Context, releaseSignals func(), args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("server", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:8080", "`host:port` to listen on; port 0 picks a free one")
	modelsDir := flags.String("models", "models", "`dir`ectory of converted model packages, served under /models/")
	webDir := flags.String("web", "web", "`dir`ectory of the app, served at /")
	logRequests := flags.Bool("log", false, "log every request to stderr")
	hubFlag := flags.String("hub", defaultHub, "the hub the page may convert checkpoints from: `URL`[,file host origins] (the Hugging Face hub brings its file hosts), or none; it sets the page's CSP connect-src")
	allowHosts := flags.String("allow-host", "", "comma-separated host `names` to answer besides localhost and the listening address (e.g. the machine's name on a LAN)")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "server: unexpected argument %q (flags only, see -h)\n", flags.Arg(0))
		return 2
	}

	hub, err := parseHub(*hubFlag)
	if err != nil {
		fmt.Fprintf(stderr, "server: %v\n", err)
		return 2
	}
	files, err := newHandler(*webDir, *modelsDir)
	if err != nil {
		fmt.Fprintf(stderr, "server: %v\n", err)
		return 1
	}
	files.log = log.New(stderr, "server: ", 0)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "server: %v\n", err) // e.g. "listen tcp 127.0.0.1:8080: bind: address already in use"
		return 1
	}
	var names []string
	if *allowHosts != "" {
		names = strings.Split(*allowHosts, ",")
	}
	h := checkHost(withHub(files, hub), newHostPolicy(ln.Addr(), names))
	if *logRequests {
		h = logged(h, log.New(stderr, "", log.LstdFlags))
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second, // no WriteTimeout: shards are large
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(stderr, "server: ", 0),
	}
	models, err := filepath.Abs(*modelsDir)
	if err != nil {
		models = *modelsDir
	}
	fmt.Fprintf(stdout, "serving %s (models: %s)\n", serveURL(ln.Addr()), models)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(withServerErrorHeaders(ln)) }()
	select {
	case err := <-served:
		fmt.Fprintf(stderr, "server: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	releaseSignals()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Cutting downloads short is the intended outcome of the timeout, not a failure.
		srv.Close()
		fmt.Fprintf(stderr, "server: requests still running after %v, closed their connections\n", shutdownTimeout)
	}
	return 0
}

// serveURL is the URL that reaches a listener at addr. A listener on every interface
// (":8080", "0.0.0.0:8080", "[::]:8080") is reached at 127.0.0.1.
func serveURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String() + "/"
	}
	host := "127.0.0.1"
	if tcp.IP != nil && !tcp.IP.IsUnspecified() {
		host = tcp.IP.String()
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port)) + "/"
}
