package main

import (
	"bytes"
	"io"
	"net"
	"strings"
)

// net/http answers a request it cannot parse (400, 431, 501, 505) itself, straight on the
// connection and without the handler, so without the security headers. Its answer is one
// Write of a fixed shape: "HTTP/1.1 <status>" + serverErrorHeaders + a text body. The
// listener below recognises exactly that shape and puts the headers in. A response from
// the handler never has it: the handler always sets Cache-Control and
// Content-Security-Policy, which net/http writes (sorted) before Content-Type.
const serverErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// serverErrorExtra is what goes in after the status line of those answers.
var serverErrorExtra = func() string {
	var b strings.Builder
	b.WriteString("\r\nCache-Control: no-store")
	for _, kv := range securityHeaders {
		b.WriteString("\r\n" + kv[0] + ": " + kv[1])
	}
	return b.String()
}()

// withServerErrorHeaders adds the security headers to net/http's own error answers on
// every connection ln accepts.
func withServerErrorHeaders(ln net.Listener) net.Listener { return headerListener{ln} }

type headerListener struct{ net.Listener }

func (l headerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &headerConn{Conn: c}, nil
}

// headerConn is a connection whose net/http error answers get the security headers. It
// keeps the *net.TCPConn methods net/http looks for: ReadFrom (sendfile for shards) and
// CloseWrite (a clean close after an error).
type headerConn struct{ net.Conn }

func (c *headerConn) Write(b []byte) (int, error) {
	if fixed, ok := addServerErrorHeaders(b); ok {
		if _, err := c.Conn.Write(fixed); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// addServerErrorHeaders returns b with the security headers after its status line, if b
// is a whole net/http error answer.
func addServerErrorHeaders(b []byte) ([]byte, bool) {
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 ")) {
		return nil, false
	}
	end := bytes.Index(b, []byte("\r\n"))
	if end < 0 || !bytes.HasPrefix(b[end:], []byte(serverErrorHeaders)) {
		return nil, false
	}
	out := make([]byte, 0, len(b)+len(serverErrorExtra))
	out = append(out, b[:end]...)
	out = append(out, serverErrorExtra...)
	return append(out, b[end:]...), true
}

func (c *headerConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (c *headerConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
