// Package api is the one place that writes and reads the Prometheus HTTP
// API envelope for Tidewatch's own endpoints (autoscaler, probes, web) and
// for the command-line client:
//
//	{"status": "success", "data": …, "warnings": […]}
//	{"status": "error", "errorType": "bad_data", "error": "…"}
//
// The /api/v1 endpoints Prometheus defines are served by Prometheus' own
// handlers (web/api/v1), which write the same envelope. This package is a
// leaf: it imports nothing of Tidewatch's.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Status values.
const (
	StatusSuccess = "success"
	StatusError   = "error"
)

// Error types, as Prometheus names them.
const (
	ErrBadData      = "bad_data"
	ErrExecution    = "execution"
	ErrInternal     = "internal"
	ErrNotFound     = "not_found"
	ErrTimeout      = "timeout"
	ErrCanceled     = "canceled"
	ErrUnavailable  = "unavailable"
	ErrUnauthorized = "unauthorized"
)

// Response is the envelope.
type Response struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data,omitempty"`
	ErrorType string          `json:"errorType,omitempty"`
	Error     string          `json:"error,omitempty"`
	Warnings  []string        `json:"warnings,omitempty"`
}

// Success answers 200 with data in the envelope.
func Success(c *gin.Context, data any) {
	c.JSON(http.StatusOK, gin.H{"status": StatusSuccess, "data": data})
}

// Fail answers code with the error envelope and stops the handler chain.
func Fail(c *gin.Context, code int, errType, msg string) {
	c.AbortWithStatusJSON(code, gin.H{"status": StatusError, "errorType": errType, "error": msg})
}

// WriteError writes the error envelope to a plain http.ResponseWriter.
func WriteError(w http.ResponseWriter, code int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(Response{Status: StatusError, ErrorType: errType, Error: msg})
}

// Error is an error envelope a server answered.
type Error struct {
	Code    int    // HTTP status
	Type    string // errorType
	Message string // error
}

func (e *Error) Error() string { return e.Message }

// Client calls a Tidewatch (or Prometheus) API.
type Client struct {
	// Base is the server's URL, e.g. http://127.0.0.1:9470.
	Base string
	// Token, when set, is sent as a bearer token.
	Token string
	// HTTP is the client to use; nil means http.DefaultClient.
	HTTP *http.Client
	// Timeout bounds each call; zero means 30 s.
	Timeout time.Duration
}

// maxResponse bounds what a call reads.
const maxResponse = 64 << 20

// Do calls method path?query and decodes the envelope's data into out (which
// may be nil). An error envelope is returned as *Error.
func (c Client) Do(ctx context.Context, method, path string, query url.Values, out any) error {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := strings.TrimSuffix(c.Base, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(nil))
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return err
	}
	var env Response
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s %s answered %s: %.200s", method, path, resp.Status, body)
	}
	if env.Status != StatusSuccess {
		return fmt.Errorf("%s %s answered %s: %w", method, path, resp.Status, &Error{Code: resp.StatusCode, Type: env.ErrorType, Message: env.Error})
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(env.Data, out)
}
