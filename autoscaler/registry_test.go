package autoscaler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{Name: "k8s", Type: TypeKubernetes, Kubeconfig: kubeconfig},
		{Name: "nomad", Type: TypeNomad, Address: "http://127.0.0.1:4646", TokenFile: token},
		{Name: "swarm", Type: TypeDocker, Host: "unix:///var/run/docker.sock"},
		{Name: "hook", Type: TypeWebhook, URL: "http://127.0.0.1:1/x", SecretFile: token},
		{Name: "script", Type: TypeExec, Command: []string{"true"}},
		{Name: "local", Type: TypeProcess, Command: []string{"true"}},
	} {
		b, err := NewBackend(c, testLogger())
		if err != nil || b == nil {
			t.Errorf("%s: %v", c.Type, err)
		}
		closeBackend(b)
	}
	for _, c := range []BackendConfig{
		{Name: "x", Type: "carrier-pigeon"},
		{Name: "k8s", Type: TypeKubernetes, Kubeconfig: filepath.Join(dir, "missing")},
		{Name: "hook", Type: TypeWebhook, URL: "http://x", SecretFile: filepath.Join(dir, "missing")},
	} {
		if _, err := NewBackend(c, testLogger()); err == nil || !strings.Contains(err.Error(), c.Name) {
			t.Errorf("%+v: err = %v, want one naming the backend", c, err)
		}
	}
}
