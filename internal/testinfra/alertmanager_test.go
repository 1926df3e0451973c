package testinfra

import (
	"net/http"
	"strings"
	"testing"
)

func TestAlertmanagerAcceptsAlerts(t *testing.T) {
	t.Parallel()
	am := StartAlertmanager(t, "route:\n  receiver: none\nreceivers:\n  - name: none\n")
	resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json",
		strings.NewReader(`[{"labels":{"alertname":"TestinfraAlert"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts: status %d", resp.StatusCode)
	}
	if am.Amtool == "" {
		t.Error("no amtool path")
	}
}
