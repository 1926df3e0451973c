package testinfra

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TrickleQuery sends POST /api/v1/query to addr with a body of bodyLen bytes
// written one byte every interval, as a slow-loris client does. It returns
// how many bytes were sent before the server ended the request, with the
// status line (or error) it ended with, or ended false when the whole body
// went through: a server without a read timeout.
func TrickleQuery(t testing.TB, addr string, bodyLen int, interval time.Duration) (sent int, status string, ended bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/query HTTP/1.1\r\nHost: tidewatch\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\nquery=", bodyLen)
	done := make(chan string, 1)
	go func() {
		// Whatever the server answers, or EOF: the request is over.
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			line = err.Error()
		}
		done <- strings.TrimSpace(line)
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for sent = len("query="); sent < bodyLen; sent++ {
		select {
		case status := <-done:
			return sent, status, true
		case <-tick.C:
			if _, err := conn.Write([]byte("1")); err != nil {
				return sent, err.Error(), true
			}
		}
	}
	return sent, "", false
}
