// Package receive owns the data Tidewatch is sent rather than scrapes: the
// Prometheus remote-write receiver (1.0 and 2.0) today, and the home of every
// push dialect to come. Each receiver exposes its routes to the HTTP router
// (Routes), refuses writes while the store cannot take them (the Ready gate,
// so that senders retry later and nothing is lost), and counts what it
// refuses and why.
//
// The wire handling is Prometheus' own (storage/remote.NewWriteHandler), so
// status codes, headers and partial-write semantics are identical; this
// package adds only what that handler cannot guard: it refuses, before a
// single sample is appended, a request carrying a label longer than a label
// can be (Prometheus' label encoding panics on one, and the handler's
// deferred Commit would then keep the series before it), and it turns any
// other panic into a 400 instead of a 500 that senders retry forever.
package receive

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"
	"github.com/golang/snappy"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
)

// MaxLabelBytes is the longest label name or value a series may carry: the
// most Prometheus' label encoding can hold (2^24 bytes). Longer ones are
// refused with 400 before anything is appended.
const MaxLabelBytes = 1 << 24

// maxBodyBytes is the remote-write handler's own limit on the compressed and
// decompressed body (client_golang's snappy middleware): a larger body is
// refused there, so there is nothing to scan beyond it.
const maxBodyBytes = 32 << 20

// Options are the receivers' dependencies.
type Options struct {
	Logger *slog.Logger
	// Registerer receives the Prometheus handler's own metrics
	// (prometheus_api_remote_write_*).
	Registerer prometheus.Registerer
	// Metrics receives tidewatch_receive_* counters.
	Metrics *metrics.Set
	// Appendable is where received samples go.
	Appendable storage.AppendableV2
	// Ready returns nil while the store accepts writes; otherwise receivers
	// answer 503 with its reason. Nil means always ready.
	Ready func() error
}

// RemoteWrite is the /api/v1/write receiver.
type RemoteWrite struct {
	logger  *slog.Logger
	set     *metrics.Set
	ready   func() error
	handler http.Handler
}

// NewRemoteWrite builds the remote-write receiver. It accepts remote write 1.0
// and 2.0 messages.
func NewRemoteWrite(o Options) (*RemoteWrite, error) {
	if o.Logger == nil || o.Registerer == nil || o.Metrics == nil || o.Appendable == nil {
		return nil, errors.New("receive: logger, registerer, metrics and appendable are required")
	}
	if o.Ready == nil {
		o.Ready = func() error { return nil }
	}
	logger := o.Logger.With("component", "remote_write")
	h := remote.NewWriteHandler(logger, o.Registerer, o.Appendable,
		remoteapi.MessageTypes{remoteapi.WriteV1MessageType, remoteapi.WriteV2MessageType}, false, false)
	return &RemoteWrite{logger: logger, set: o.Metrics, ready: o.Ready, handler: h}, nil
}

// Routes mounts POST /api/v1/write on r.
func (rw *RemoteWrite) Routes(r gin.IRouter) {
	r.POST("/api/v1/write", gin.WrapH(rw))
}

// ServeHTTP receives one remote-write request.
func (rw *RemoteWrite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			rw.logger.Error("remote write request panicked; refused", "panic", p, "stack", string(debug.Stack()))
			rw.reject(w, "panic", http.StatusBadRequest, fmt.Sprintf("request could not be processed: %v", p))
		}
	}()
	if err := rw.ready(); err != nil {
		rw.reject(w, "unavailable", http.StatusServiceUnavailable, fmt.Sprintf("store unavailable: %v", err))
		return
	}
	// Only a body that decompresses past MaxLabelBytes can hold a label that
	// long; snappy's block header (a varint, at most 10 bytes) says how far
	// it decompresses, so every other request passes on unread.
	br := bufio.NewReaderSize(r.Body, 16)
	head, _ := br.Peek(binary.MaxVarintLen64)
	body := struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	r.Body = body
	if n, err := snappy.DecodedLen(head); err == nil && n > MaxLabelBytes && snappyEncoded(r) {
		raw, err := io.ReadAll(io.LimitReader(br, maxBodyBytes+1))
		if err != nil {
			rw.reject(w, "read", http.StatusBadRequest, fmt.Sprintf("read request body: %v", err))
			return
		}
		if err := checkLabelLengths(r.Header.Get("Content-Type"), raw); err != nil {
			rw.reject(w, "label_too_long", http.StatusBadRequest, err.Error())
			return
		}
		// Hand the bytes read (and whatever lies beyond the limit, for the
		// handler to refuse) to Prometheus' handler.
		body.Reader = io.MultiReader(bytes.NewReader(raw), br)
		r.Body = body
	}
	rw.handler.ServeHTTP(w, r)
}

// snappyEncoded reports whether r's body is snappy (the handler refuses
// any other encoding itself).
func snappyEncoded(r *http.Request) bool {
	enc := r.Header.Get("Content-Encoding")
	return enc == "" || enc == string(remoteapi.SnappyBlockCompression)
}

func (rw *RemoteWrite) reject(w http.ResponseWriter, reason string, code int, msg string) {
	rw.set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_receive_rejected_requests_total{receiver="remote_write",reason=%q}`, reason)).Inc()
	http.Error(w, msg, code)
}

// checkLabelLengths refuses a request holding a label name or value over
// MaxLabelBytes. It is called only for a body that decompresses past
// MaxLabelBytes (ServeHTTP reads the size from snappy's header); such a
// body is decoded once more here, which costs nothing that matters next to
// refusing it. Bodies the handler will refuse anyway (bad encoding or
// compression, over its size limit) are left to it and its error messages.
func checkLabelLengths(contentType string, body []byte) error {
	if len(body) > maxBodyBytes {
		return nil
	}
	n, err := snappy.DecodedLen(body)
	if err != nil || n <= MaxLabelBytes || n > maxBodyBytes {
		return nil
	}
	if contentType == "" {
		contentType = "application/x-protobuf"
	}
	msgType, err := remoteapi.ParseProtoMsg(contentType)
	if err != nil {
		return nil
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil
	}
	if msgType == remoteapi.WriteV2MessageType {
		var req writev2.Request
		if req.Unmarshal(raw) != nil {
			return nil
		}
		for _, s := range req.Symbols {
			if len(s) > MaxLabelBytes {
				return fmt.Errorf("a symbol of %d bytes is longer than a label may be (%d bytes); nothing was written", len(s), MaxLabelBytes)
			}
		}
		return nil
	}
	var req prompb.WriteRequest
	if req.Unmarshal(raw) != nil {
		return nil
	}
	for i, ts := range req.Timeseries {
		for _, l := range ts.Labels {
			if len(l.Name) > MaxLabelBytes || len(l.Value) > MaxLabelBytes {
				return fmt.Errorf("series %d: label %.64q has a %d-byte name and a %d-byte value, longer than a label may be (%d bytes); nothing was written",
					i, l.Name, len(l.Name), len(l.Value), MaxLabelBytes)
			}
		}
	}
	return nil
}
