package web

import (
	"os"
	"testing"
)

func TestExternalURL(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	for _, c := range []struct {
		cfg     Config
		want    string
		wantErr bool
	}{
		{Config{ListenAddress: ":9470"}, "http://" + host + ":9470", false},
		{Config{ListenAddress: "0.0.0.0:9000"}, "http://" + host + ":9000", false},
		{Config{ListenAddress: "127.0.0.1:9470"}, "http://127.0.0.1:9470", false},
		{Config{ListenAddress: "127.0.0.1:9470", TLSServerConfig: TLSConfig{CertFile: "c", KeyFile: "k"}}, "https://127.0.0.1:9470", false},
		{Config{ListenAddress: ":9470", ExternalURL: "https://tw.example/prefix"}, "https://tw.example/prefix", false},
		{Config{ListenAddress: "127.0.0.1:1", ExternalURL: "http://bad host/%zz"}, "http://127.0.0.1:1", true},
	} {
		u, err := ExternalURL(c.cfg)
		if (err != nil) != c.wantErr || u.String() != c.want {
			t.Errorf("ExternalURL(%+v) = %v, %v; want %s (error %v)", c.cfg, u, err, c.want, c.wantErr)
		}
	}
}
