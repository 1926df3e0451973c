package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/web/ui"
)

// TestUIBehindBearerToken: the status pages are served by `tidewatch serve`
// and, with web.bearer_token_file, need the token like the API does.
func TestUIBehindBearerToken(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	const token = "ui-token"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tw := newTidewatch(t, "", "  bearer_token_file: "+tokenFile+"\n")
	tw.start()
	for _, path := range append([]string{"/", "/ui/style.css"}, ui.Pages...) {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			status, _, err := apiGet(t.Context(), tw.url, path, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if status != http.StatusUnauthorized {
				t.Errorf("GET %s without token: %d, want 401", path, status)
			}
			h := http.Header{"Authorization": {"Bearer " + token}}
			status, body, err := apiGet(t.Context(), tw.url, path, nil, h)
			if err != nil {
				t.Fatal(err)
			}
			if path != "/" && (status != http.StatusOK || len(body) == 0) {
				t.Errorf("GET %s with token: %d %.200s", path, status, body)
			}
			if path == "/" && status != http.StatusOK { // the client follows the redirect to /graph
				t.Errorf("GET / with token: %d", status)
			}
		})
	}
}
