package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/internal/api"
)

// DefaultSpan is how far back an analysis reads when from is not given.
const DefaultSpan = 24 * time.Hour

// Service analyses the running Tidewatch's store on request (the API and
// the status UI). It starts nothing.
type Service struct {
	src    Source
	input  func() Input
	logger *slog.Logger
	now    func() time.Time
	// one analysis at a time: each reads the whole span
	sem chan struct{}
}

// NewService analyses src with the configuration input returns (called on
// each request, so a reload applies).
func NewService(src Source, input func() Input, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{src: src, input: input, logger: logger.With("component", "analysis"), now: time.Now, sem: make(chan struct{}, 1)}
}

// Analyze analyses the span from–to.
func (s *Service) Analyze(ctx context.Context, from, to time.Time) (*Report, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()
	return Analyze(ctx, s.input(), s.src, from, to, s.logger)
}

// Span reads from and to as the API and the UI take them: RFC 3339, Unix
// seconds, or a duration before now; to defaults to now, from to
// DefaultSpan before to.
func (s *Service) Span(from, to string) (time.Time, time.Time, error) {
	now := s.now()
	t, err := ParseTime(to, now, now)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("to: %w", err)
	}
	f, err := ParseTime(from, t.Add(-DefaultSpan), now)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("from: %w", err)
	}
	if !t.After(f) {
		return time.Time{}, time.Time{}, errors.New("to must be after from")
	}
	return f, t, nil
}

// ParseTime reads RFC 3339, Unix seconds, "now", or a duration before now
// (2h, 7d); "" is def.
func ParseTime(s string, def, now time.Time) (time.Time, error) {
	switch s {
	case "":
		return def, nil
	case "now":
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(f*1e9)), nil
	}
	if d, err := model.ParseDuration(strings.TrimPrefix(s, "-")); err == nil {
		return now.Add(-time.Duration(d)), nil
	}
	return time.Time{}, fmt.Errorf("%q is not RFC 3339, Unix seconds, now, or a duration", s)
}

// Routes mounts GET /api/v1/autoscaler/analysis?from=&to= on r
// (web.Options.Routes): the report of tidewatch analyze --output json, in
// the API envelope.
func (s *Service) Routes(r gin.IRouter) {
	r.GET("/api/v1/autoscaler/analysis", func(c *gin.Context) {
		from, to, err := s.Span(c.Query("from"), c.Query("to"))
		if err != nil {
			api.Fail(c, http.StatusBadRequest, api.ErrBadData, err.Error())
			return
		}
		rep, err := s.Analyze(c.Request.Context(), from, to)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				api.Fail(c, http.StatusServiceUnavailable, api.ErrCanceled, err.Error())
				return
			}
			api.Fail(c, http.StatusInternalServerError, api.ErrExecution, err.Error())
			return
		}
		api.Success(c, rep)
	})
}
