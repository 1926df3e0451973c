// Package fileread reads the files named by the configuration (the
// configuration file itself, rule files, secret and token files) with a bound
// on their size, so that a file that is a symlink to /dev/zero, a FIFO, a
// directory or a runaway log cannot make Tidewatch block or grow without limit.
package fileread

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Limits for the kinds of files Tidewatch reads.
const (
	// ConfigLimit bounds the configuration file and scrape_config_files.
	ConfigLimit int64 = 32 << 20
	// RuleFileLimit bounds each rule file.
	RuleFileLimit int64 = 32 << 20
	// SecretLimit bounds password, token and secret files.
	SecretLimit int64 = 64 << 10
)

var (
	// ErrNotRegular is returned for a path that is not a regular file once
	// symlinks are followed (a directory, device, FIFO or socket).
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge is returned for a file larger than the limit.
	ErrTooLarge = errors.New("file too large")
)

// ReadFile reads the regular file at path (symlinks followed) when it holds
// at most limit bytes. Every error names path; one about the size names the
// limit too.
func ReadFile(path string, limit int64) ([]byte, error) {
	if err := Check(path, limit); err != nil {
		return nil, err
	}
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The path may have changed since Check: look at what was opened.
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkInfo(path, fi, limit); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(path, limit)
	}
	return b, nil
}

// Check reports whether ReadFile(path, limit) would accept the file as it is
// now, without reading it: it exists, is a regular file once symlinks are
// followed and holds at most limit bytes.
func Check(path string, limit int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err // *fs.PathError names the path
	}
	return checkInfo(path, fi, limit)
}

func checkInfo(path string, fi fs.FileInfo, limit int64) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(fi.Mode()))
	}
	if fi.Size() > limit {
		return tooLarge(path, limit)
	}
	return nil
}

func tooLarge(path string, limit int64) error {
	return fmt.Errorf("%s: %w: over the limit of %s", path, ErrTooLarge, Size(limit))
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "mode " + m.Type().String()
	}
}

// Size formats a byte count the way the limits are written: 32 MiB, 64 KiB, 100 B.
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d B", n)
	}
}
