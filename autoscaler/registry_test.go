package autoscaler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/autoscaler/backend/docker"
	execbackend "github.com/tidewatch/tidewatch/autoscaler/backend/exec"
	"github.com/tidewatch/tidewatch/autoscaler/backend/kubernetes"
	"github.com/tidewatch/tidewatch/autoscaler/backend/nomad"
	"github.com/tidewatch/tidewatch/autoscaler/backend/process"
	"github.com/tidewatch/tidewatch/autoscaler/backend/webhook"
)

func TestRegistryBuildsEveryType(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600)
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("secret\n"), 0o600)
	for _, c := range []BackendConfig{
		{Name: "k8s", Type: TypeKubernetes, Config: &kubernetes.Config{Kubeconfig: kubeconfig}},
		{Name: "nomad", Type: TypeNomad, Config: &nomad.Config{Address: "http://127.0.0.1:4646", TokenFile: token}},
		{Name: "swarm", Type: TypeDocker, Config: &docker.Config{Host: "unix:///var/run/docker.sock"}},
		{Name: "hook", Type: TypeWebhook, Config: &webhook.Config{URL: "http://127.0.0.1:1/x", SecretFile: token}},
		{Name: "script", Type: TypeExec, Config: &execbackend.Config{Command: []string{"true"}}},
		{Name: "local", Type: TypeProcess, Config: &process.Config{Command: []string{"true"}}},
	} {
		b, err := NewBackend(c, testLogger())
		if err != nil || b == nil {
			t.Errorf("%s: %v", c.Type, err)
		}
		closeBackend(b)
	}
	for _, c := range []BackendConfig{
		{Name: "x", Type: "carrier-pigeon"},
		{Name: "k8s", Type: TypeKubernetes, Config: &kubernetes.Config{Kubeconfig: filepath.Join(dir, "missing")}},
		{Name: "hook", Type: TypeWebhook, Config: &webhook.Config{URL: "http://x", SecretFile: filepath.Join(dir, "missing")}},
	} {
		if _, err := NewBackend(c, testLogger()); err == nil || !strings.Contains(err.Error(), c.Name) {
			t.Errorf("%+v: err = %v, want one naming the backend", c, err)
		}
	}
}
