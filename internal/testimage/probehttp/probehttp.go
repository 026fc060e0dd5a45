// Package probehttp is the HTTP side of the test probe's serve verb. The
// probe program and the fake runtime both use it, so a test gets the same
// answers from a real container and from a fake one.
package probehttp

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
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
// line, and /exit?code=N by sending N on exit (dropped when one is already
// pending).
func Handler(host string, env func() []string, exit chan<- int) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, strings.Join(env(), "\n"))
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
