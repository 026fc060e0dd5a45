package config

import (
	"errors"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for name, mut := range map[string]func(*Server){
		"empty data dir": func(s *Server) { s.DataDir = "" },
		"listen no port": func(s *Server) { s.Listen = "localhost" },
		"bad region":     func(s *Server) { s.Region = "moon" },
		"etcd not url":   func(s *Server) { s.EtcdEndpoints = []string{"127.0.0.1:2379"} },
		"prefix":         func(s *Server) { s.EtcdPrefix = "berth" },
		"body":           func(s *Server) { s.MaxBodyBytes = 0 },
		"log level":      func(s *Server) { s.LogLevel = "loud" },
		"log format":     func(s *Server) { s.LogFormat = "xml" },
	} {
		s := Defaults()
		mut(&s)
		if err := s.Validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want invalid argument", name, err)
		}
	}
	s := Defaults()
	s.Region = "eu-west-3"
	if err := s.Validate(); err != nil {
		t.Errorf("eu-west-3: %v", err)
	}
}
