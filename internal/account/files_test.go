package account

import (
	"os"
	"strings"
	"testing"
)

func TestProfileConfigCABundle(t *testing.T) {
	for _, tc := range []struct {
		name, endpoint, caBundle string
	}{
		{name: "plain HTTP names no CA", endpoint: "http://127.0.0.1:7400"},
		{name: "TLS names the CA", endpoint: "https://192.0.2.1:7400", caBundle: "/var/lib/berth/tls/ca.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := FilesIn(t.TempDir())
			f.CABundle = tc.caBundle
			if err := WriteProfileFiles(f, Account{ID: "123456789012", Region: "eu-west-1"}, AccessKey{AccessKeyID: "A", SecretAccessKey: "S"}, tc.endpoint, nil); err != nil {
				t.Fatal(err)
			}
			conf, err := os.ReadFile(f.Config)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(conf), "ca_bundle"); got != (tc.caBundle != "") {
				t.Errorf("config names ca_bundle: %v, want %v:\n%s", got, tc.caBundle != "", conf)
			}
			p, err := ReadProfileConfig(f.Config)
			if err != nil {
				t.Fatal(err)
			}
			if want := (ProfileConfig{Region: "eu-west-1", EndpointURL: tc.endpoint, CABundle: tc.caBundle}); p != want {
				t.Errorf("ReadProfileConfig = %+v, want %+v", p, want)
			}
		})
	}
}
