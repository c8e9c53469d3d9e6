package main

import (
	"net"
	"net/http"
	"strings"
)

// hostPolicy decides which Host headers the server answers. A page on another site can
// point its own DNS name at 127.0.0.1 (DNS rebinding) and then read our responses as
// same-origin to it; the one thing it cannot forge is the Host header, which carries its
// name. So a name is served only if it is a localhost name or listed with --allow-host;
// an IP literal only if it is an address this server listens on (any address when it
// listens on all of them) or loopback. The port is not checked: a proxy may change it.
type hostPolicy struct {
	listenIP net.IP          // nil or unspecified: every address of this machine
	names    map[string]bool // lower case, from --allow-host
}

func newHostPolicy(addr net.Addr, names []string) hostPolicy {
	p := hostPolicy{names: map[string]bool{}}
	if tcp, ok := addr.(*net.TCPAddr); ok {
		p.listenIP = tcp.IP
	}
	for _, n := range names {
		p.names[strings.ToLower(strings.TrimSuffix(n, "."))] = true
	}
	return p
}

// allows reports whether a request with this Host header may be served.
func (p hostPolicy) allows(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1] // "[::1]" without a port
	}
	if host == "" {
		return false // HTTP/1.0 without Host: no browser sends that
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback() || p.listenIP == nil || p.listenIP.IsUnspecified() || ip.Equal(p.listenIP)
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	// RFC 6761: localhost and its subdomains always resolve to loopback in browsers.
	return name == "localhost" || strings.HasSuffix(name, ".localhost") || p.names[name]
}

// checkHost serves only requests whose Host the policy allows; the others get 421
// Misdirected Request, with the security headers like every other response.
func checkHost(h http.Handler, p hostPolicy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.allows(r.Host) {
			setSecurityHeaders(w.Header())
			fail(w, http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}
