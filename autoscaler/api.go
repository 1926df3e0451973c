package autoscaler

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
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
	g.GET("/policies", func(c *gin.Context) { success(c, m.Policies()) })
	g.GET("/decisions", func(c *gin.Context) {
		limit := 100
		if s := c.Query("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				failure(c, http.StatusBadRequest, "bad_data", "limit must be a non-negative integer")
				return
			}
			limit = n
		}
		ds := m.Decisions(c.Query("policy"), limit)
		if ds == nil {
			ds = []Decision{}
		}
		success(c, ds)
	})
	pause := func(paused bool) gin.HandlerFunc {
		return func(c *gin.Context) {
			name := c.Param("name")
			if err := m.setPaused(name, paused); err != nil {
				if errors.Is(err, ErrNoPolicy) {
					failure(c, http.StatusNotFound, "not_found", err.Error())
					return
				}
				failure(c, http.StatusInternalServerError, "internal", err.Error())
				return
			}
			for _, p := range m.Policies() {
				if p.Name == name {
					success(c, p)
					return
				}
			}
		}
	}
	g.POST("/policies/:name/pause", pause(true))
	g.POST("/policies/:name/resume", pause(false))
}

func success(c *gin.Context, data any) {
	c.JSON(http.StatusOK, gin.H{"status": "success", "data": data})
}

func failure(c *gin.Context, code int, typ, msg string) {
	c.JSON(code, gin.H{"status": "error", "errorType": typ, "error": msg})
}
