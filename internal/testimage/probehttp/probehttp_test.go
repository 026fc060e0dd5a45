package probehttp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHandlerAndPort(t *testing.T) {
	if Port([]string{"-port", "9000"}) != "9000" || Port(nil) != DefaultPort || Port([]string{"-port"}) != DefaultPort {
		t.Fatal("Port")
	}
	exit := make(chan int, 1)
	srv := httptest.NewServer(Handler("h1", func() []string { return []string{"A=1", "B=2"} }, exit))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/fetch?env=NOPE"); code != http.StatusNotFound {
		t.Errorf("/fetch of an unset variable: %d", code)
	}
	if _, body := get("/"); body != "hello from h1\n" {
		t.Errorf("/: %q", body)
	}
	if _, body := get("/env"); body != "A=1\nB=2\n" {
		t.Errorf("/env: %q", body)
	}
	if code, _ := get("/exit?code=x"); code != http.StatusBadRequest {
		t.Errorf("/exit?code=x: %d", code)
	}
	if _, body := get("/exit?code=3"); body != "exiting with 3\n" || <-exit != 3 {
		t.Errorf("/exit?code=3: %q", body)
	}
}

func TestFetchRelaysTheTarget(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "path="+r.URL.Path)
	}))
	defer target.Close()
	srv := httptest.NewServer(Handler("h", func() []string { return []string{"META=" + target.URL + "/v4/abc"} }, nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/fetch?env=META&path=/task")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTeapot || string(b) != "path=/v4/abc/task" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}
