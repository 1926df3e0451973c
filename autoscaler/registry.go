package autoscaler

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
	execbackend "github.com/tidewatch/tidewatch/autoscaler/backend/exec"
	"github.com/tidewatch/tidewatch/autoscaler/backend/process"
	"github.com/tidewatch/tidewatch/autoscaler/backend/webhook"
	"github.com/tidewatch/tidewatch/internal/fileread"
	"github.com/tidewatch/tidewatch/internal/version"
)

// NewBackend builds the backend c describes. This switch is the registry of
// backend types; adding a backend is adding a package under
// autoscaler/backend/, a case here and its fields in backendFields.
func NewBackend(c BackendConfig, logger *slog.Logger) (backend.Backend, error) {
	timeout := time.Duration(c.Timeout)
	if timeout <= 0 {
		timeout = DefaultBackendTimeout
	}
	switch c.Type {
	case TypeWebhook:
		var secret []byte
		if c.SecretFile != "" {
			s, err := readSecret(c.SecretFile)
			if err != nil {
				return nil, fmt.Errorf("backend %s: %w", c.Name, err)
			}
			secret = []byte(s)
		}
		return webhook.New(webhook.Options{
			URL: c.URL, Secret: secret, Headers: c.Headers, MaxRetries: c.MaxRetries,
			RetryBackoff: time.Duration(c.RetryBackoff), Timeout: timeout,
			UserAgent: "Tidewatch/" + version.Get().Version,
		})
	case TypeExec:
		return execbackend.New(execbackend.Options{Command: c.Command, CurrentCommand: c.CurrentCommand, Timeout: timeout})
	case TypeProcess:
		return process.New(process.Options{
			Name: c.Name, Command: c.Command, BasePort: c.BasePort, Dir: c.Dir, Env: c.Env,
			StopTimeout: time.Duration(c.StopTimeout), SDFile: c.SDFile, Labels: c.Labels,
			Logger: logger.With("component", "autoscaler", "backend", c.Name),
		})
	case TypeKubernetes, TypeNomad, TypeDocker:
		return newOrchestratorBackend(c, timeout)
	default:
		return nil, fmt.Errorf("backend %s: unknown type %q", c.Name, c.Type)
	}
}

// readSecret reads a secret file, without its trailing newline.
func readSecret(file string) (string, error) {
	b, err := fileread.ReadFile(file, fileread.SecretLimit)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", file)
	}
	return s, nil
}
