package web

import (
	"net"
	"net/url"
	"os"
)

// ExternalURL is the one definition of the URL Tidewatch is reachable at,
// used in alert generator URLs, notification templates, scale-event links
// and the Grafana data source the dashboards provision: web.external_url
// when set; otherwise scheme://host:port of the listen address, where a
// wildcard host (":9470", "0.0.0.0", "::") becomes the machine's hostname,
// as in Prometheus, and a specific one (127.0.0.1) is kept, since it is the
// only address that reaches this listener. On a web.external_url that is not
// a URL it returns the default and the error.
func ExternalURL(c Config) (*url.URL, error) {
	if c.ExternalURL != "" {
		u, err := url.Parse(c.ExternalURL)
		if err == nil {
			return u, nil
		}
		def, _ := ExternalURL(Config{ListenAddress: c.ListenAddress, TLSServerConfig: c.TLSServerConfig})
		return def, err
	}
	host, port, err := net.SplitHostPort(c.ListenAddress)
	if err != nil {
		host, port = "", "9470"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		if host, err = os.Hostname(); err != nil || host == "" {
			host = "localhost"
		}
	}
	scheme := "http"
	if c.TLSServerConfig.CertFile != "" {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}, nil
}
