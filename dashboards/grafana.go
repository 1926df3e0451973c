package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// The folder dashboards are pushed and provisioned into.
const (
	DefaultFolder    = "Tidewatch"
	DefaultFolderUID = "tidewatch"
)

// Client pushes dashboards through Grafana's HTTP API (folder and dashboard
// APIs). Set Token for a service account token or API key, or User and
// Password for basic auth.
type Client struct {
	URL            string
	Token          string
	User, Password string
	HTTP           *http.Client
}

// APIError is a non-2xx answer of Grafana.
type APIError struct {
	Method, Path string
	StatusCode   int
	// Status is the "status" field of a 412 answer (version-mismatch,
	// name-exists, plugin-dashboard); Message is Grafana's "message".
	Status, Message string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s %s: grafana answered %d", e.Method, e.Path, e.StatusCode)
	if e.Status != "" {
		s += " (" + e.Status + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.URL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Token)
	case c.User != "":
		req.SetBasicAuth(c.User, c.Password)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &APIError{Method: method, Path: path, StatusCode: resp.StatusCode}
		var msg struct{ Status, Message string }
		if json.Unmarshal(raw, &msg) == nil {
			e.Status, e.Message = msg.Status, msg.Message
		} else {
			e.Message = strings.TrimSpace(string(raw))
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Folder is a Grafana folder.
type Folder struct {
	UID   string `json:"uid"`
	Title string `json:"title"`
}

// EnsureFolder returns the folder with uid, creating it with title when
// missing. When Grafana refuses the creation because a folder with that
// title exists (409, or 412 on older versions), that folder is used.
func (c *Client) EnsureFolder(ctx context.Context, uid, title string) (Folder, error) {
	var f Folder
	err := c.do(ctx, http.MethodGet, "/api/folders/"+url.PathEscape(uid), nil, &f)
	if err == nil {
		return f, nil
	}
	if !isStatus(err, http.StatusNotFound) {
		return f, fmt.Errorf("look up folder %q: %w", uid, err)
	}
	err = c.do(ctx, http.MethodPost, "/api/folders", map[string]string{"uid": uid, "title": title}, &f)
	if err == nil {
		return f, nil
	}
	if !isStatus(err, http.StatusConflict) && !isStatus(err, http.StatusPreconditionFailed) {
		return f, fmt.Errorf("create folder %q: %w", title, err)
	}
	var all []Folder
	if lerr := c.do(ctx, http.MethodGet, "/api/folders?limit=1000", nil, &all); lerr != nil {
		return f, fmt.Errorf("create folder %q: %w; list folders: %w", title, err, lerr)
	}
	for _, ff := range all {
		if ff.Title == title {
			return ff, nil
		}
	}
	return f, fmt.Errorf("create folder %q: %w (and no folder has that title)", title, err)
}

func isStatus(err error, code int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == code
}

// PushResult is Grafana's answer to one dashboard upsert.
type PushResult struct {
	UID     string `json:"uid"`
	URL     string `json:"url"`
	Status  string `json:"status"`
	Version int    `json:"version"`
}

// Upsert creates or overwrites dashboard d in folderUID
// (POST /api/dashboards/db with overwrite). A 412 (version-mismatch,
// name-exists, plugin-dashboard) is returned as an *APIError carrying
// Grafana's status; it is not retried, since overwrite is already set.
func (c *Client) Upsert(ctx context.Context, d Dashboard, folderUID string) (PushResult, error) {
	var model map[string]any
	if err := json.Unmarshal(d.JSON, &model); err != nil {
		return PushResult{}, fmt.Errorf("decode dashboard %s: %w", d.UID, err)
	}
	model["id"] = nil // matched by uid
	body := map[string]any{
		"dashboard": model,
		"folderUid": folderUID,
		"overwrite": true,
		"message":   "tidewatch dashboards push",
	}
	var r PushResult
	if err := c.do(ctx, http.MethodPost, "/api/dashboards/db", body, &r); err != nil {
		return r, fmt.Errorf("push dashboard %s: %w", d.UID, err)
	}
	return r, nil
}

// Push ensures the folder and upserts every dashboard, pushing all of them
// even when one fails; the error joins every failure.
func (c *Client) Push(ctx context.Context, ds []Dashboard, folderUID, folderTitle string) ([]PushResult, error) {
	f, err := c.EnsureFolder(ctx, folderUID, folderTitle)
	if err != nil {
		return nil, err
	}
	var out []PushResult
	var errs []error
	for _, d := range ds {
		r, err := c.Upsert(ctx, d, f.UID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}
