package app

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tidewatch/tidewatch/config"
)

// legacyNotificationsDir is where the built-in notifier kept silences and
// its notification log before they moved under the storage path: data/alerting
// in the working directory, whatever the storage path said.
const legacyNotificationsDir = "data/alerting"

// NotificationsDir is where the built-in notifier keeps silences and its
// notification log: notifications.data_dir, else "alerting" in the storage
// path (store.Config.DataDir).
func NotificationsDir(cfg *config.Config) string {
	if cfg.Notifications.DataDir != "" {
		return cfg.Notifications.DataDir
	}
	return filepath.Join(cfg.Storage.DataDir(), "alerting")
}

// prepareNotificationsDir returns NotificationsDir(cfg). When it does not
// exist yet but the legacy directory does (a Tidewatch from before the move,
// started from the same working directory), the legacy directory is moved
// there, once, and the move is logged, so no silence is lost.
func prepareNotificationsDir(cfg *config.Config, logger *slog.Logger) (string, error) {
	dir := NotificationsDir(cfg)
	if cfg.Notifications.DataDir != "" {
		return dir, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	legacy, err := filepath.Abs(legacyNotificationsDir)
	if err != nil {
		return "", err
	}
	if abs == legacy {
		return dir, nil
	}
	if _, err := os.Stat(abs); err == nil || !os.IsNotExist(err) {
		return dir, nil
	}
	if fi, err := os.Stat(legacy); err != nil || !fi.IsDir() {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return "", fmt.Errorf("notifications directory: %w", err)
	}
	if err := os.Rename(legacy, abs); err != nil {
		return "", fmt.Errorf("move the notifications directory from %s to %s: %w", legacy, abs, err)
	}
	logger.Info("moved the built-in notifier's silences and notification log under the storage path (once)", "from", legacy, "to", abs)
	// The legacy parent (data/) is removed when the move left it empty.
	_ = os.Remove(filepath.Dir(legacy))
	return dir, nil
}
