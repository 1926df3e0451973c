package autoscaler

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/tidewatch/tidewatch/internal/api"
)

// Routes mounts the autoscaler's HTTP API on r (web.Options.Routes):
//
//	GET  /api/v1/autoscaler/policies                  every policy's status
//	GET  /api/v1/autoscaler/decisions?policy=&limit=  latest decisions, newest first
//	POST /api/v1/autoscaler/policies/:name/pause      stop acting (keep evaluating)
//	POST /api/v1/autoscaler/policies/:name/resume
//
// Answers use the Prometheus API envelope: {"status": "success", "data": …}
// or {"status": "error", "errorType": …, "error": …}.
func (m *Manager) Routes(r gin.IRouter) {
	g := r.Group("/api/v1/autoscaler")
	g.GET("/policies", func(c *gin.Context) { api.Success(c, m.Policies()) })
	g.GET("/decisions", func(c *gin.Context) {
		limit := 100
		if s := c.Query("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				api.Fail(c, http.StatusBadRequest, api.ErrBadData, "limit must be a non-negative integer")
				return
			}
			limit = n
		}
		ds := m.Decisions(c.Query("policy"), limit)
		if ds == nil {
			ds = []Decision{}
		}
		api.Success(c, ds)
	})
	pause := func(paused bool) gin.HandlerFunc {
		return func(c *gin.Context) {
			name := c.Param("name")
			if err := m.setPaused(name, paused); err != nil {
				if errors.Is(err, ErrNoPolicy) {
					api.Fail(c, http.StatusNotFound, api.ErrNotFound, err.Error())
					return
				}
				api.Fail(c, http.StatusInternalServerError, api.ErrInternal, err.Error())
				return
			}
			for _, p := range m.Policies() {
				if p.Name == name {
					api.Success(c, p)
					return
				}
			}
		}
	}
	g.POST("/policies/:name/pause", pause(true))
	g.POST("/policies/:name/resume", pause(false))
}
