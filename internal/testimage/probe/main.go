// Command probe is the one program inside berth's test images. It does what
// its arguments say, so one image serves every runtime and agent test:
//
//	serve [-port N]        HTTP: / answers "hello from <hostname>", /env lists
//	                       the environment, /fetch?env=VAR&path=P relays a GET
//	                       of $VAR+P (e.g. the task metadata endpoint),
//	                       /exit?code=N exits with N; exits 0
//	                       on SIGTERM
//	exit N [DELAY]         exit with code N, after DELAY (a Go duration)
//	sleep [DURATION]       sleep (forever by default); exits 0 on SIGTERM
//	sigterm-exit N         sleep until SIGTERM, then exit with code N
//	ignore-sigterm         sleep and ignore SIGTERM (only SIGKILL stops it)
//	alloc MiB              allocate and touch MiB mebibytes, print
//	                       "allocated N MiB", then sleep as "sleep" does
//	print TEXT...          write "stdout: TEXT" to stdout and "stderr: TEXT"
//	                       to stderr for each argument, then exit 0
//	info                   print uid=, gid=, cwd=, hostname=, nofile-hard= (the
//	                       soft limit is not observable: Go raises it to the hard
//	                       one at start-up),
//	                       seccomp=, nonewprivs=, capeff= (from /proc/self/status),
//	                       args= and one "env KEY=VALUE" line per variable
//	                       (sorted), then exit 0
//	touch PATH             create PATH; exit 0, or 1 if it cannot be written
//	cat PATH               print the file; exit 1 if it cannot be read
//	healthcheck URL|PATH   exit 0 if the URL answers 2xx or PATH exists, else 1
//
// SIGTERM and SIGINT make every verb exit 0, except sigterm-exit (exit N)
// and ignore-sigterm. The handler matters: as PID 1 of its PID namespace the
// process would otherwise never see a stop signal. Every long-running verb
// prints "ready" on stdout once it is set up, so tests can wait for it in the
// container's log.
//
// It uses the standard library only and is built with CGO_ENABLED=0, so the
// image needs nothing else. The fake runtime (internal/agent/runtime/fakeruntime)
// imitates the same vocabulary.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/testimage/probehttp"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		args = []string{"sleep"}
	}
	if args[0] == "ignore-sigterm" {
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	} else {
		onStop := 0
		if args[0] == "sigterm-exit" && len(args) == 2 {
			if n, err := strconv.Atoi(args[1]); err == nil {
				onStop = n
			}
		}
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		go func() {
			<-stop
			os.Exit(onStop)
		}()
	}
	os.Exit(run(args[0], args[1:]))
}

func run(verb string, args []string) int {
	switch verb {
	case "serve":
		return serve(args)
	case "exit":
		if len(args) == 0 {
			return usage("exit N [DELAY]")
		}
		code, err := strconv.Atoi(args[0])
		if err != nil {
			return usage("exit N [DELAY]")
		}
		if len(args) > 1 {
			d, err := time.ParseDuration(args[1])
			if err != nil {
				return usage("exit N [DELAY]")
			}
			time.Sleep(d)
		}
		return code
	case "sleep":
		var d time.Duration
		if len(args) > 0 {
			var err error
			if d, err = time.ParseDuration(args[0]); err != nil {
				return usage("sleep [DURATION]")
			}
		}
		return sleep(d)
	case "sigterm-exit":
		if len(args) != 1 {
			return usage("sigterm-exit N")
		}
		if _, err := strconv.Atoi(args[0]); err != nil {
			return usage("sigterm-exit N")
		}
		return sleep(0)
	case "ignore-sigterm":
		return sleep(0)
	case "alloc":
		if len(args) != 1 {
			return usage("alloc MiB")
		}
		mib, err := strconv.Atoi(args[0])
		if err != nil || mib < 0 {
			return usage("alloc MiB")
		}
		// Touch every page so the memory is really charged to the cgroup.
		hold := make([][]byte, mib)
		for i := range hold {
			hold[i] = make([]byte, 1<<20)
			for j := 0; j < len(hold[i]); j += 4096 {
				hold[i][j] = 1
			}
		}
		fmt.Printf("allocated %d MiB\n", mib)
		code := sleep(0)
		runtime.KeepAlive(hold)
		return code
	case "print":
		for _, a := range args {
			fmt.Fprintln(os.Stdout, "stdout: "+a)
			fmt.Fprintln(os.Stderr, "stderr: "+a)
		}
		return 0
	case "info":
		info(args)
		return 0
	case "touch":
		if len(args) != 1 {
			return usage("touch PATH")
		}
		f, err := os.OpenFile(args[0], os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "touch:", err)
			return 1
		}
		f.Close()
		return 0
	case "cat":
		if len(args) != 1 {
			return usage("cat PATH")
		}
		b, err := os.ReadFile(args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, "cat:", err)
			return 1
		}
		os.Stdout.Write(b)
		return 0
	case "healthcheck":
		if len(args) != 1 {
			return usage("healthcheck URL|PATH")
		}
		return healthcheck(args[0])
	default:
		fmt.Fprintf(os.Stderr, "probe: unknown verb %q\n", verb)
		return 2
	}
}

func usage(s string) int {
	fmt.Fprintln(os.Stderr, "usage: probe "+s)
	return 2
}

// sleep waits for d, forever when 0; the stop-signal handler in main ends
// it early.
func sleep(d time.Duration) int {
	fmt.Println("ready")
	if d == 0 {
		// A sleeping loop rather than select{}: with no other goroutine
		// (ignore-sigterm) the runtime would call select{} a deadlock.
		for {
			time.Sleep(time.Hour)
		}
	}
	time.Sleep(d)
	return 0
}

func serve(args []string) int {
	port := probehttp.Port(args)
	host, _ := os.Hostname()
	exit := make(chan int, 1)
	mux := probehttp.Handler(host, func() []string {
		env := os.Environ()
		slices.Sort(env)
		return env
	}, exit)
	// Listen before saying ready, so a client that waits for the line
	// finds the port open.
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	failed := make(chan error, 1)
	go func() { failed <- srv.Serve(l) }()
	fmt.Println("ready: listening on :" + port)
	select {
	case err := <-failed:
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	case code := <-exit:
		// Let the response reach the client before the process goes away.
		time.Sleep(100 * time.Millisecond)
		return code
	}
}

func info(args []string) {
	wd, _ := os.Getwd()
	host, _ := os.Hostname()
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	fmt.Printf("uid=%d\ngid=%d\ncwd=%s\nhostname=%s\nnofile-hard=%d\n",
		os.Getuid(), os.Getgid(), wd, host, lim.Max)
	// The kernel's view of the process's confinement.
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "Seccomp", "NoNewPrivs", "CapEff":
			fmt.Printf("%s=%s\n", strings.ToLower(k), strings.TrimSpace(v))
		}
	}
	fmt.Printf("args=%s\n", strings.Join(args, " "))
	env := os.Environ()
	slices.Sort(env)
	for _, e := range env {
		fmt.Println("env " + e)
	}
}

func healthcheck(target string) int {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(target)
		if err != nil {
			fmt.Fprintln(os.Stderr, "healthcheck:", err)
			return 1
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return 1
		}
		return 0
	}
	if _, err := os.Stat(target); err != nil {
		return 1
	}
	return 0
}
