// Package webhook scales by POSTing a signed JSON description of each
// decision to a URL. The receiver does the scaling; its 2xx answer may
// report the resulting replica count.
//
// # Wire format
//
//	POST <url>
//	Content-Type: application/json
//	Idempotency-Key: <decision id>
//	X-Tidewatch-Decision-Id: <decision id>
//	X-Tidewatch-Signature: sha256=<hex HMAC-SHA256 of the body with the secret>
//
//	{"version": "1", "decision_id": "…", "policy": "api",
//	 "target": {"kind": "Deployment", "namespace": "shop", "name": "api"},
//	 "current": 2, "desired": 5, "reason": "…",
//	 "metrics": [{"query": "…", "type": "per_instance", "target": 2,
//	              "value": 10, "forecast": 12, "recommendation": 5}],
//	 "time": "2026-03-02T09:00:00Z"}
//
// A 2xx answer is success; a JSON body {"replicas": N} reports the count.
// Network errors and 5xx answers are retried with exponential backoff, with
// the same body and decision id, so that the receiver can deduplicate; 4xx
// answers are not retried.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// Options configure a webhook backend.
type Options struct {
	URL string
	// Secret signs the body; empty means unsigned.
	Secret  []byte
	Headers map[string]string
	// MaxRetries is how many times a retryable failure is retried.
	MaxRetries int
	// RetryBackoff is the first retry's delay; it doubles up to 30 s.
	RetryBackoff time.Duration
	// Timeout bounds one HTTP request.
	Timeout time.Duration
	// Client is the HTTP client; nil means a new one.
	Client    *http.Client
	UserAgent string
}

// Body is the JSON document sent for each decision.
type Body struct {
	Version    string           `json:"version"`
	DecisionID string           `json:"decision_id"`
	Policy     string           `json:"policy"`
	Target     backend.Target   `json:"target"`
	Current    int              `json:"current"`
	Desired    int              `json:"desired"`
	Reason     string           `json:"reason"`
	Metrics    []backend.Metric `json:"metrics"`
	Time       time.Time        `json:"time"`
}

// SignatureHeader carries "sha256=<hex>" of the body.
const SignatureHeader = "X-Tidewatch-Signature"

// Backend is the webhook backend. It remembers the last count each target
// was scaled to (or that the receiver reported), which it returns as the
// current count; before the first call the count is unknown.
type Backend struct {
	o Options

	mtx  sync.Mutex
	last map[backend.Target]int
}

var _ backend.Backend = (*Backend)(nil)

// NewWithOptions returns a webhook backend; it sends nothing until Scale.
func NewWithOptions(o Options) (*Backend, error) {
	if !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
		return nil, fmt.Errorf("webhook url %q is not http(s)", o.URL)
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 500 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = "Tidewatch"
	}
	return &Backend{o: o, last: map[backend.Target]int{}}, nil
}

// Sign returns the X-Tidewatch-Signature value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature under secret (for receivers).
func Verify(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}

// Current returns the last known count, or an error wrapping backend.ErrUnknown.
func (b *Backend) Current(_ context.Context, t backend.Target) (int, error) {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	n, ok := b.last[t]
	if !ok {
		return 0, fmt.Errorf("webhook %s: %w", t.Name, backend.ErrUnknown)
	}
	return n, nil
}

// Scale POSTs the decision, retrying network errors and 5xx answers.
func (b *Backend) Scale(ctx context.Context, t backend.Target, req backend.Request) (backend.Result, error) {
	body, err := json.Marshal(Body{
		Version: "1", DecisionID: req.DecisionID, Policy: req.Policy, Target: t,
		Current: req.Current, Desired: req.Desired, Reason: req.Reason, Metrics: req.Metrics, Time: req.Time.UTC(),
	})
	if err != nil {
		return backend.Result{}, fmt.Errorf("encode webhook body: %w", err)
	}
	backoff := b.o.RetryBackoff
	for attempt := 0; ; attempt++ {
		res, retry, err := b.post(ctx, req.DecisionID, body)
		if err == nil {
			n := req.Desired
			if res.Replicas >= 0 {
				n = res.Replicas
			}
			b.mtx.Lock()
			b.last[t] = n
			b.mtx.Unlock()
			return res, nil
		}
		if !retry || attempt >= b.o.MaxRetries {
			return backend.Result{}, fmt.Errorf("scale %s to %d: after %d attempts: %w", t.Name, req.Desired, attempt+1, err)
		}
		select {
		case <-ctx.Done():
			return backend.Result{}, fmt.Errorf("scale %s to %d: %w (last error: %v)", t.Name, req.Desired, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// post sends body once. retry reports whether a failure may be retried.
func (b *Backend) post(ctx context.Context, id string, body []byte) (res backend.Result, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, b.o.URL, bytes.NewReader(body))
	if err != nil {
		return res, false, err
	}
	for k, v := range b.o.Headers {
		hreq.Header.Set(k, v)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("User-Agent", b.o.UserAgent)
	hreq.Header.Set("Idempotency-Key", id)
	hreq.Header.Set("X-Tidewatch-Decision-Id", id)
	if len(b.o.Secret) > 0 {
		hreq.Header.Set(SignatureHeader, Sign(b.o.Secret, body))
	}
	resp, err := b.o.Client.Do(hreq)
	if err != nil {
		return res, true, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode >= 500:
		return res, true, fmt.Errorf("receiver answered %s: %s", resp.Status, firstLine(answer))
	case resp.StatusCode >= 300:
		return res, false, fmt.Errorf("receiver refused with %s: %s", resp.Status, firstLine(answer))
	}
	res = backend.Result{Replicas: -1, Message: resp.Status}
	var reported struct {
		Replicas *int `json:"replicas"`
	}
	if json.Unmarshal(answer, &reported) == nil && reported.Replicas != nil {
		res.Replicas = *reported.Replicas
	}
	return res, false, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
