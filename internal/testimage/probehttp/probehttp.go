// Package probehttp is the HTTP side of the test probe's serve verb. The
// probe program and the fake runtime both use it, so a test gets the same
// answers from a real container and from a fake one.
package probehttp

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultPort is where serve listens without -port.
const DefaultPort = "8080"

// Port returns the value of serve's -port argument, or DefaultPort.
func Port(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-port" {
			return args[i+1]
		}
	}
	return DefaultPort
}

// Handler answers / with "hello from <host>", /env with env() one entry a
// line, /fetch?env=VAR&path=P by fetching the URL in variable VAR with P
// appended (from where the probe runs: inside the container, e.g. the task
// metadata endpoint) and relaying its status and body, and /exit?code=N by
// sending N on exit (dropped when one is already pending).
func Handler(host string, env func() []string, exit chan<- int) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, strings.Join(env(), "\n"))
	})
	mux.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("env")
		base := ""
		for _, e := range env() {
			if k, v, ok := strings.Cut(e, "="); ok && k == name {
				base = v
			}
		}
		if base == "" {
			http.Error(w, "variable "+name+" is not set", http.StatusNotFound)
			return
		}
		c := http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get(base + r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil {
			http.Error(w, "code must be an integer", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "exiting with %d\n", code)
		select {
		case exit <- code:
		default:
		}
	})
	return mux
}
