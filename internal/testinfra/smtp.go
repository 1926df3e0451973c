package testinfra

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mail is one message an SMTPSink accepted.
type Mail struct {
	From     string
	To       []string
	Data     string // headers and body as sent
	TLS      bool   // the session was upgraded with STARTTLS
	Username string // from AUTH PLAIN or LOGIN; empty without AUTH
	Password string
}

// SMTPSink is an in-process SMTP server on loopback that offers STARTTLS
// (self-signed certificate for 127.0.0.1) and AUTH PLAIN/LOGIN, accepts every
// message and hands it to Mails. It speaks enough of RFC 5321 for Go's and
// Alertmanager's clients.
type SMTPSink struct {
	Addr  string // 127.0.0.1:port
	Mails chan Mail

	l   net.Listener
	tls *tls.Config
	wg  sync.WaitGroup
}

// StartSMTPSink starts the sink; it is closed in t.Cleanup.
func StartSMTPSink(t testing.TB) *SMTPSink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for smtp: %v", err)
	}
	cert, err := selfSignedCert()
	if err != nil {
		t.Fatalf("smtp certificate: %v", err)
	}
	s := &SMTPSink{Addr: l.Addr().String(), Mails: make(chan Mail, 100), l: l,
		tls: &tls.Config{Certificates: []tls.Certificate{cert}}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		l.Close()
		s.wg.Wait()
	})
	return s
}

func (s *SMTPSink) serve() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(time.Minute))
			s.session(c)
		}()
	}
}

func (s *SMTPSink) session(c net.Conn) {
	tp := textproto.NewConn(c)
	var m Mail
	reply := func(format string, args ...any) bool { return tp.PrintfLine(format, args...) == nil }
	if !reply("220 127.0.0.1 tidewatch-test ESMTP") {
		return
	}
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			lines := []string{"250-127.0.0.1", "250-8BITMIME", "250-AUTH PLAIN LOGIN"}
			if !m.TLS {
				lines = append(lines, "250-STARTTLS")
			}
			lines = append(lines, "250 SIZE 10485760")
			for _, l := range lines {
				if !reply("%s", l) {
					return
				}
			}
		case "STARTTLS":
			if !reply("220 ready to start TLS") {
				return
			}
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c = tc
			tp = textproto.NewConn(tc)
			m = Mail{TLS: true}
		case "AUTH":
			mech, initial, _ := strings.Cut(arg, " ")
			switch strings.ToUpper(mech) {
			case "PLAIN":
				if initial == "" {
					reply("334 ")
					if initial, err = tp.ReadLine(); err != nil {
						return
					}
				}
				b, _ := base64.StdEncoding.DecodeString(initial)
				parts := strings.Split(string(b), "\x00")
				if len(parts) == 3 {
					m.Username, m.Password = parts[1], parts[2]
				}
			case "LOGIN":
				reply("334 VXNlcm5hbWU6")
				u, err := tp.ReadLine()
				if err != nil {
					return
				}
				reply("334 UGFzc3dvcmQ6")
				p, err := tp.ReadLine()
				if err != nil {
					return
				}
				ub, _ := base64.StdEncoding.DecodeString(u)
				pb, _ := base64.StdEncoding.DecodeString(p)
				m.Username, m.Password = string(ub), string(pb)
			default:
				reply("504 unrecognized authentication type")
				continue
			}
			reply("235 authentication succeeded")
		case "MAIL":
			m.From = addrArg(arg)
			reply("250 ok")
		case "RCPT":
			m.To = append(m.To, addrArg(arg))
			reply("250 ok")
		case "DATA":
			if !reply("354 end data with <CR><LF>.<CR><LF>") {
				return
			}
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			m.Data = string(data)
			s.Mails <- m
			m = Mail{TLS: m.TLS, Username: m.Username, Password: m.Password}
			reply("250 ok: queued")
		case "RSET":
			m = Mail{TLS: m.TLS, Username: m.Username, Password: m.Password}
			reply("250 ok")
		case "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 command not implemented")
		}
	}
}

// addrArg extracts the address of "FROM:<a@b>" or "TO:<a@b> …".
func addrArg(arg string) string {
	_, rest, _ := strings.Cut(arg, ":")
	rest = strings.TrimSpace(rest)
	if i := strings.IndexByte(rest, '>'); strings.HasPrefix(rest, "<") && i > 0 {
		return rest[1:i]
	}
	return rest
}

func selfSignedCert() (tls.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
