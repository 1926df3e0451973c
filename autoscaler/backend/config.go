package backend

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/internal/fileread"
)

// Config is what each backend's own Config gives the autoscaler: its
// checks. A backend package exports a Config struct with yaml tags (the
// keys of its autoscaling.backends entry beside name and type), a
// DefaultConfig, and New(Config, Deps); autoscaler/registry.go maps its
// type name to them.
type Config interface {
	// Validate checks the configuration on its own, returning FieldErrors
	// (errors.Join of them) naming the keys at fault.
	Validate() error
	// ValidateTarget checks a policy's target on this backend, returning
	// FieldErrors naming the target's keys (kind, group…).
	ValidateTarget(Target) error
}

// FileChecker is implemented by a Config that names files its backend reads
// when it is built (secrets, tokens, kubeconfigs), so that `tidewatch check
// config` finds what building the backend would: CheckFiles maps each such
// key to the problem reading its file (nil when it reads).
type FileChecker interface {
	CheckFiles() map[string]error
}

// Deps are what a backend gets besides its configuration.
type Deps struct {
	// Name is the backend's name in the configuration.
	Name string
	// Logger is already scoped to the backend.
	Logger *slog.Logger
	// UserAgent identifies Tidewatch to HTTP backends.
	UserAgent string
}

// DefaultTimeout bounds one call to a backend when its timeout is unset.
const DefaultTimeout = 30 * time.Second

// TimeoutOr returns d, or DefaultTimeout when d is not positive.
func TimeoutOr(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}

// FieldError is a configuration problem of one key; Field is empty when the
// problem is the entry's as a whole.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Problem returns a FieldError for field.
func Problem(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// FieldErrors flattens err (an errors.Join of FieldErrors) into its
// FieldErrors; an error of another kind becomes one without a field.
func FieldErrors(err error) []*FieldError {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*FieldError
		for _, e := range j.Unwrap() {
			out = append(out, FieldErrors(e)...)
		}
		return out
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return []*FieldError{fe}
	}
	return []*FieldError{{Msg: err.Error()}}
}

// CheckSecretFile is a FileChecker's answer for one secret key: the problem
// ReadSecret finds in file, under key; nothing when file is unset.
func CheckSecretFile(key, file string) map[string]error {
	if file == "" {
		return nil
	}
	_, err := ReadSecret(file)
	return map[string]error{key: err}
}

// ReadSecret reads a secret file, without its trailing newline.
func ReadSecret(file string) (string, error) {
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
