package testinfra

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LockPath is the file lock that serializes apt-get across processes.
const LockPath = "/tmp/tidewatch-testinfra-apt.lock"

const policyRCPath = "/usr/sbin/policy-rc.d"

// aptUpdate runs apt-get update at most once per process.
var aptUpdate struct {
	sync.Mutex
	done bool
}

// Installed reports whether the Debian package pkg is installed.
func Installed(pkg string) bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
	return err == nil && strings.HasSuffix(strings.TrimSpace(string(out)), " installed")
}

// Install installs the Debian packages in pkgs that are not installed yet.
// It does nothing (and runs no apt-get) when all are installed. Installing
// needs root; apt-get output goes to log. See the package comment for the
// rules it follows.
func Install(ctx context.Context, log io.Writer, pkgs ...string) error {
	missing := missingPackages(pkgs)
	if len(missing) == 0 {
		return nil
	}
	if log == nil {
		log = io.Discard
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("packages %s are not installed and installing them needs root", strings.Join(missing, " "))
	}
	unlock, err := lockFile(ctx, LockPath)
	if err != nil {
		return err
	}
	defer unlock()
	// Another process may have installed them while we waited for the lock.
	missing = missingPackages(missing)
	if len(missing) == 0 {
		return nil
	}
	if err := ensurePolicyRC(); err != nil {
		return err
	}
	if err := updateOnce(ctx, log); err != nil {
		return err
	}
	args := append([]string{"install", "-y", "--no-install-recommends",
		"-o", "DPkg::Lock::Timeout=300",
		"-o", "Dpkg::Options::=--force-confdef",
		"-o", "Dpkg::Options::=--force-confold"}, missing...)
	if err := aptGet(ctx, log, args...); err != nil {
		return fmt.Errorf("install %s: %w", strings.Join(missing, " "), err)
	}
	if still := missingPackages(missing); len(still) > 0 {
		return fmt.Errorf("packages %s are still not installed after apt-get install", strings.Join(still, " "))
	}
	return nil
}

// Need makes sure the Debian package pkg is installed (installing it when
// missing and running as root) and returns the absolute path of each of
// binaries by name. When that is impossible, the test fails if CI is set and
// is skipped otherwise.
func Need(t testing.TB, pkg string, binaries ...string) map[string]string {
	t.Helper()
	if !Installed(pkg) {
		var log bytes.Buffer
		start := time.Now()
		if err := Install(t.Context(), &log, pkg); err != nil {
			unavailable(t, "package %s: %v\n%s", pkg, err, tail(log.Bytes(), 40))
		}
		t.Logf("installed package %s in %s", pkg, time.Since(start).Round(time.Millisecond))
	}
	paths := make(map[string]string, len(binaries))
	for _, b := range binaries {
		p, err := findBinary(b)
		if err != nil {
			unavailable(t, "package %s: %v", pkg, err)
		}
		paths[b] = p
	}
	return paths
}

// unavailable fails the test when CI is set and skips it otherwise.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("dependency unavailable (CI is set, so this fails): "+format, args...)
	}
	t.Skipf("dependency unavailable (set CI to fail instead): "+format, args...)
}

func missingPackages(pkgs []string) []string {
	var missing []string
	for _, p := range pkgs {
		if !Installed(p) {
			missing = append(missing, p)
		}
	}
	return missing
}

func findBinary(name string) (string, error) {
	if filepath.IsAbs(name) {
		if isExecutable(name) {
			return name, nil
		}
		return "", fmt.Errorf("binary %s is not executable", name)
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	// PATH may lack the sbin dirs for non-login shells.
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/bin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("binary %s not found in PATH or the system dirs", name)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// lockFile takes an exclusive flock on path, polling so that ctx can cancel.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open apt lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for apt lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ensurePolicyRC makes sure installing a package does not start its service.
func ensurePolicyRC() error {
	if _, err := os.Stat(policyRCPath); err == nil {
		return nil
	}
	script := "#!/bin/sh\n# Written by tidewatch testinfra: never start services on install.\nexit 101\n"
	if err := os.WriteFile(policyRCPath, []byte(script), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", policyRCPath, err)
	}
	return nil
}

func updateOnce(ctx context.Context, log io.Writer) error {
	aptUpdate.Lock()
	defer aptUpdate.Unlock()
	if aptUpdate.done {
		return nil
	}
	if err := aptGet(ctx, log, "update", "-o", "DPkg::Lock::Timeout=300"); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	aptUpdate.done = true
	return nil
}

func aptGet(ctx context.Context, log io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdin = nil
	cmd.Stdout = log
	cmd.Stderr = log
	fmt.Fprintf(log, "+ apt-get %s\n", strings.Join(args, " "))
	return cmd.Run()
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	i := len(b)
	for ; n > 0 && i > 0; n-- {
		i = bytes.LastIndexByte(b[:i], '\n')
		if i < 0 {
			i = 0
			break
		}
	}
	return string(bytes.TrimLeft(b[i:], "\n"))
}
