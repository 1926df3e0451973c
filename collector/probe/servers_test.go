package probe_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// servers are real local servers for every prober, on 127.0.0.1.
type servers struct {
	cert *testCert

	http  string // base URL: /healthz says ok, /fail answers 500, /slow never answers
	https string // base URL of the same handler over TLS (cert.caFile signs it)
	tcp   string // host:port: greets "220 tidewatch", answers QUIT with "221 bye"
	tls   string // the same dialogue over TLS
	dns   string // host:port (UDP and TCP): api.test. A 127.0.0.1, anything else NXDOMAIN
	grpc  string // host:port: health service, "api" SERVING, "down" NOT_SERVING
}

func startServers(t *testing.T) *servers {
	t.Helper()
	s := &servers{cert: newTestCert(t)}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	s.http = hs.URL

	hts := httptest.NewUnstartedServer(mux)
	hts.TLS = &tls.Config{Certificates: []tls.Certificate{s.cert.server}}
	hts.StartTLS()
	t.Cleanup(hts.Close)
	s.https = hts.URL

	s.tcp = serveDialogue(t, nil)
	s.tls = serveDialogue(t, &tls.Config{Certificates: []tls.Certificate{s.cert.server}})
	s.dns = serveDNS(t)
	s.grpc = serveGRPC(t)
	return s
}

// serveDialogue serves a small SMTP-like dialogue, over TLS when tc is set.
func serveDialogue(t *testing.T, tc *tls.Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tc != nil {
		l = tls.NewListener(l, tc)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "220 tidewatch\r\n")
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.TrimSpace(line) == "QUIT" {
						io.WriteString(c, "221 bye\r\n")
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

func serveDNS(t *testing.T) string {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		q := req.Question[0]
		switch {
		case q.Name == "api.test." && q.Qtype == dns.TypeA:
			rr, _ := dns.NewRR("api.test. 60 IN A 127.0.0.1")
			m.Answer = append(m.Answer, rr)
		case q.Name == "api.test.":
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	// UDP and TCP on the same port, for dns probes with transport_protocol
	// tcp. The UDP port is free, its TCP twin may not be (other tests
	// listen in parallel): try other ports until both are ours.
	var (
		pc  net.PacketConn
		l   net.Listener
		err error
	)
	for range 50 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatalf("no port free for both UDP and TCP: %v", err)
	}
	udp := &dns.Server{PacketConn: pc, Handler: handler}
	tcp := &dns.Server{Listener: l, Handler: handler}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	return pc.LocalAddr().String()
}

func serveGRPC(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("api", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}
