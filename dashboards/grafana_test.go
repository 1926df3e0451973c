package dashboards

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeGrafana speaks the request and answer shapes of Grafana's documented
// folder API (GET /api/folders/:uid, GET /api/folders, POST /api/folders)
// and dashboard API (POST /api/dashboards/db). No Grafana server is
// available on this machine, so the client is tested against this recording
// of the wire format. It checks authentication, content types and bodies,
// and records every request.
type fakeGrafana struct {
	t    *testing.T
	auth func(*http.Request) bool

	mtx     sync.Mutex
	folders map[string]string // uid -> title
	boards  map[string]map[string]any
	calls   []string
	// conflictOnCreate answers POST /api/folders with 409 (a folder with that
	// title exists under another uid, which is put in folders).
	conflictOnCreate bool
	// reject412 answers POST /api/dashboards/db for that uid with a 412.
	reject412 string
}

func newFakeGrafana(t *testing.T, auth func(*http.Request) bool) (*fakeGrafana, *httptest.Server) {
	f := &fakeGrafana{t: t, auth: auth, folders: map[string]string{}, boards: map[string]map[string]any{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeGrafana) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.RequestURI())
	if !f.auth(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "invalid API key"})
		return
	}
	if r.Header.Get("Accept") != "application/json" {
		f.t.Errorf("%s %s: Accept %q", r.Method, r.URL, r.Header.Get("Accept"))
	}
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("%s %s: Content-Type %q", r.Method, r.URL, r.Header.Get("Content-Type"))
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/folders":
		var list []map[string]any
		for uid, title := range f.folders {
			list = append(list, map[string]any{"id": 1, "uid": uid, "title": title})
		}
		writeJSON(w, http.StatusOK, list)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/folders/"):
		uid := strings.TrimPrefix(r.URL.Path, "/api/folders/")
		title, ok := f.folders[uid]
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "folder not found", "status": "not-found"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": 1, "uid": uid, "title": title, "url": "/dashboards/f/" + uid})
	case r.Method == http.MethodPost && r.URL.Path == "/api/folders":
		var body struct{ UID, Title string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Title == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "bad request"})
			return
		}
		if f.conflictOnCreate {
			f.folders["existing-uid"] = body.Title
			writeJSON(w, http.StatusConflict, map[string]string{"message": "a folder with the same name already exists"})
			return
		}
		f.folders[body.UID] = body.Title
		writeJSON(w, http.StatusOK, map[string]any{"id": 1, "uid": body.UID, "title": body.Title})
	case r.Method == http.MethodPost && r.URL.Path == "/api/dashboards/db":
		var body struct {
			Dashboard map[string]any `json:"dashboard"`
			FolderUID string         `json:"folderUid"`
			Overwrite bool           `json:"overwrite"`
			Message   string         `json:"message"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
			return
		}
		uid, _ := body.Dashboard["uid"].(string)
		if id, ok := body.Dashboard["id"]; !ok || id != nil {
			f.t.Errorf("dashboard %s: id %v, want null (match by uid)", uid, id)
		}
		if !body.Overwrite || uid == "" || body.Dashboard["title"] == nil {
			f.t.Errorf("dashboard body: uid %q overwrite %v", uid, body.Overwrite)
		}
		if _, ok := f.folders[body.FolderUID]; !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "folder not found"})
			return
		}
		if uid == f.reject412 {
			writeJSON(w, http.StatusPreconditionFailed, map[string]string{"status": "plugin-dashboard", "message": "The dashboard belongs to plugin X."})
			return
		}
		version := 1
		if _, ok := f.boards[uid]; ok {
			version = 2
		}
		f.boards[uid] = body.Dashboard
		writeJSON(w, http.StatusOK, map[string]any{"id": 7, "uid": uid, "url": "/d/" + uid + "/x", "status": "success", "version": version, "slug": "x"})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "not found"})
	}
}

func (f *fakeGrafana) callList() string {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	return strings.Join(f.calls, "\n")
}

func testDashboards(t *testing.T) []Dashboard {
	ds, err := Generate(fullInput())
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestPushCreatesFolderAndUpserts(t *testing.T) {
	f, srv := newFakeGrafana(t, func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer glsa_secret" })
	c := &Client{URL: srv.URL + "/", Token: "glsa_secret"}
	ds := testDashboards(t)
	res, err := c.Push(t.Context(), ds, DefaultFolderUID, DefaultFolder)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(ds) || res[0].Version != 1 || res[0].Status != "success" {
		t.Errorf("results: %+v", res)
	}
	want := []string{"GET /api/folders/tidewatch", "POST /api/folders"}
	for range ds {
		want = append(want, "POST /api/dashboards/db")
	}
	if got := f.callList(); got != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	// A second push finds the folder and overwrites (version 2).
	res, err = c.Push(t.Context(), ds, DefaultFolderUID, DefaultFolder)
	if err != nil || res[0].Version != 2 {
		t.Fatalf("second push: %+v, %v", res, err)
	}
	if n := strings.Count(f.callList(), "POST /api/folders\n"); n != 1 {
		t.Errorf("folder created %d times", n)
	}
	if got := f.boards[UIDFleet]["title"]; got != "Tidewatch / Fleet overview" {
		t.Errorf("stored fleet dashboard title %v", got)
	}
}

func TestPushBasicAuthAndFolderConflict(t *testing.T) {
	f, srv := newFakeGrafana(t, func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		return ok && u == "admin" && p == "pa:ss"
	})
	f.conflictOnCreate = true
	c := &Client{URL: srv.URL, User: "admin", Password: "pa:ss"}
	if _, err := c.Push(t.Context(), testDashboards(t), DefaultFolderUID, DefaultFolder); err != nil {
		t.Fatal(err)
	}
	calls := f.callList()
	if !strings.Contains(calls, "POST /api/folders\nGET /api/folders?limit=1000\nPOST /api/dashboards/db") {
		t.Errorf("calls:\n%s", calls)
	}
	if len(f.boards) != 5 {
		t.Errorf("%d dashboards stored", len(f.boards))
	}
}

func TestPushErrors(t *testing.T) {
	t.Run("unauthorized", func(t *testing.T) {
		_, srv := newFakeGrafana(t, func(r *http.Request) bool { return false })
		c := &Client{URL: srv.URL, Token: "wrong"}
		_, err := c.Push(t.Context(), testDashboards(t), DefaultFolderUID, DefaultFolder)
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized || !strings.Contains(err.Error(), "invalid API key") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("precondition failed", func(t *testing.T) {
		f, srv := newFakeGrafana(t, func(r *http.Request) bool { return true })
		f.reject412 = UIDAlerts
		c := &Client{URL: srv.URL, Token: "t"}
		res, err := c.Push(t.Context(), testDashboards(t), DefaultFolderUID, DefaultFolder)
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusPreconditionFailed || ae.Status != "plugin-dashboard" {
			t.Fatalf("err = %v", err)
		}
		if want := fmt.Sprintf("push dashboard %s: POST /api/dashboards/db: grafana answered 412 (plugin-dashboard): The dashboard belongs to plugin X.", UIDAlerts); err.Error() != want {
			t.Errorf("err = %q\nwant %q", err, want)
		}
		// The others are pushed all the same.
		if len(res) != 4 || len(f.boards) != 4 {
			t.Errorf("%d results, %d stored", len(res), len(f.boards))
		}
		if n := strings.Count(f.callList(), "POST /api/dashboards/db"); n != 5 {
			t.Errorf("%d dashboard posts, want 5 (a 412 is not retried)", n)
		}
	})
}
