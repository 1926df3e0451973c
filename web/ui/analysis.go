package ui

import (
	"html/template"

	"github.com/gin-gonic/gin"
)

// analysisView is the analysis page: the span asked for and the report
// (or why there is none).
type analysisView struct {
	From, To string
	Report   template.HTML
	Error    string
}

// analysis renders capacity analytics over ?from=&to= (default the last
// day), as tidewatch analyze --output html does.
func (u *UI) analysis(c *gin.Context) {
	v := analysisView{From: c.Query("from"), To: c.Query("to")}
	switch {
	case u.o.Analysis == nil:
		v.Error = "capacity analytics is not available"
	default:
		from, to, err := u.o.Analysis.Span(v.From, v.To)
		if err != nil {
			v.Error = err.Error()
			break
		}
		rep, err := u.o.Analysis.Analyze(c.Request.Context(), from, to)
		if err != nil {
			u.logger.Warn("analysis", "err", err)
			v.Error = err.Error()
			break
		}
		if v.Report, err = rep.Fragment(); err != nil {
			v.Error = err.Error()
		}
	}
	u.render(c, "analysis", "Analysis", v)
}
