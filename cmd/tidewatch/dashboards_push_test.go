package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestDashboardsPushCLI runs `tidewatch dashboards push --token-file` against
// an httptest server standing in for Grafana (none is available here): it
// answers the documented folder and dashboard API shapes and records what
// the command sent. The client's handling of 409/412 answers is tested in
// package dashboards.
func TestDashboardsPushCLI(t *testing.T) {
	var mtx sync.Mutex
	var calls []string
	uids := map[string]string{} // dashboard uid -> folderUid
	grafana := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mtx.Lock()
		defer mtx.Unlock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer glsa_from_file" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"message":"Unauthorized"}`))
			return
		}
		switch r.Method + " " + r.URL.Path {
		case "GET /api/folders/ops":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"folder not found"}`))
		case "POST /api/folders":
			var f struct{ UID, Title string }
			json.NewDecoder(r.Body).Decode(&f)
			if f.UID != "ops" || f.Title != "Operations" {
				t.Errorf("folder body %+v", f)
			}
			w.Write([]byte(`{"id":3,"uid":"ops","title":"Operations"}`))
		case "POST /api/dashboards/db":
			var b struct {
				Dashboard struct {
					UID string `json:"uid"`
				} `json:"dashboard"`
				FolderUID string `json:"folderUid"`
				Overwrite bool   `json:"overwrite"`
			}
			json.NewDecoder(r.Body).Decode(&b)
			if !b.Overwrite {
				t.Errorf("dashboard %s pushed without overwrite", b.Dashboard.UID)
			}
			uids[b.Dashboard.UID] = b.FolderUID
			json.NewEncoder(w).Encode(map[string]any{"id": 1, "uid": b.Dashboard.UID, "url": "/d/" + b.Dashboard.UID, "status": "success", "version": 1})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer grafana.Close()

	tw := newTidewatch(t, "", "")
	tokenFile := filepath.Join(tw.dir, "grafana.token")
	if err := os.WriteFile(tokenFile, []byte("glsa_from_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"dashboards", "push", "--config", tw.config, "--grafana-url", grafana.URL,
		"--token-file", tokenFile, "--folder", "Operations", "--folder-uid", "ops"}, &out, &errb)
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, errb.String())
	}
	mtx.Lock()
	if len(uids) != 5 {
		t.Errorf("pushed %v", uids)
	}
	for uid, f := range uids {
		if f != "ops" {
			t.Errorf("%s pushed to folder %q", uid, f)
		}
	}
	if got := strings.Join(calls[:2], ", "); got != "GET /api/folders/ops, POST /api/folders" {
		t.Errorf("first calls: %s", got)
	}
	mtx.Unlock()
	if n := strings.Count(out.String(), "version 1"); n != 5 {
		t.Errorf("output:\n%s", out.String())
	}

	errb.Reset()
	if code := run([]string{"dashboards", "push", "--config", tw.config, "--grafana-url", grafana.URL, "--token", "wrong"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "401") {
		t.Errorf("wrong token: exit %d: %s", code, errb.String())
	}
}
