package web

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tidewatch/tidewatch/store"
)

// formatMaxDepth caps the depth format_query accepts, whatever
// query.max_depth says: Prometheus' pretty-printer re-prints every subtree
// at every level, so its cost grows with the cube of the depth (measured on
// 6480e51: depth 128 ≤ 80 ms, 256 ≤ 0.6 s, 512 up to 7.5 s, 1000 over a
// minute), and it cannot be interrupted.
const formatMaxDepth = 128

// exprParams are the form parameters the API parses as PromQL.
var exprParams = []string{"query", "match[]"}

// queryLimits refuses, before the Prometheus handler parses anything, an
// expression longer than query.max_length or deeper than query.max_depth,
// with the API's own 400 bad_data envelope. Parsing cannot be cancelled, so
// this is what bounds its time, for every endpoint that parses PromQL:
// query, query_range, format_query, parse_query and the match[] selectors of
// series, labels and label values.
func (s *Server) queryLimits(formatting bool) gin.HandlerFunc {
	maxLength, maxDepth := s.query.MaxLength, s.query.MaxDepth
	if formatting {
		maxDepth = min(maxDepth, formatMaxDepth)
	}
	return func(c *gin.Context) {
		// The handler parses the same form; a malformed one is its to report.
		if err := c.Request.ParseForm(); err != nil {
			return
		}
		for _, p := range exprParams {
			for _, v := range c.Request.Form[p] {
				if err := store.CheckQueryText(v, maxLength, maxDepth); err != nil {
					c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{
						"status":    "error",
						"errorType": "bad_data",
						"error":     fmt.Sprintf("invalid parameter %q: %v", p, err),
					})
					return
				}
			}
		}
	}
}
