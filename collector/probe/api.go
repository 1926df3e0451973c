package probe

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidewatch/tidewatch/internal/api"
)

// ActiveTarget is a probed target as /api/v1/probes shows it (field names
// follow /api/v1/targets).
type ActiveTarget struct {
	DiscoveredLabels map[string]string `json:"discoveredLabels"`
	Labels           map[string]string `json:"labels"`
	Job              string            `json:"job"`
	// Target is what is probed: a URL, host:port or host name.
	Target            string    `json:"target"`
	Prober            string    `json:"prober"`
	Health            string    `json:"health"` // up, down or unknown (not probed yet)
	LastError         string    `json:"lastError"`
	LastProbe         time.Time `json:"lastProbe"`
	LastProbeDuration float64   `json:"lastProbeDuration"` // seconds
	Interval          string    `json:"probeInterval"`
	Timeout           string    `json:"probeTimeout"`
}

// DroppedTarget is a discovered target that relabeling (or sharding) dropped.
type DroppedTarget struct {
	DiscoveredLabels map[string]string `json:"discoveredLabels"`
	Job              string            `json:"job"`
}

// Targets returns the active and dropped targets, sorted by job and target.
func (m *Manager) Targets() (active []ActiveTarget, dropped []DroppedTarget) {
	m.mtx.Lock()
	ts := make([]*target, 0, len(m.active))
	for _, t := range m.active {
		ts = append(ts, t)
	}
	for job, dls := range m.dropped {
		for _, dl := range dls {
			dropped = append(dropped, DroppedTarget{DiscoveredLabels: dl.Map(), Job: job})
		}
	}
	m.mtx.Unlock()

	active = make([]ActiveTarget, 0, len(ts))
	for _, t := range ts {
		j := t.job()
		t.mtx.Lock()
		a := ActiveTarget{
			DiscoveredLabels:  t.discovered.Map(),
			Labels:            t.labels.Map(),
			Job:               t.jobName,
			Target:            t.addr,
			Prober:            j.cfg.Module.Prober,
			Health:            t.health,
			LastProbe:         t.lastProbe,
			LastProbeDuration: t.lastDur.Seconds(),
			Interval:          j.cfg.Interval.String(),
			Timeout:           j.timeout.String(),
		}
		if t.lastErr != nil {
			a.LastError = t.lastErr.Error()
		}
		t.mtx.Unlock()
		active = append(active, a)
	}
	slices.SortFunc(active, func(a, b ActiveTarget) int {
		return cmp.Or(cmp.Compare(a.Job, b.Job), cmp.Compare(a.Target, b.Target),
			labels.Compare(labels.FromMap(a.Labels), labels.FromMap(b.Labels)))
	})
	slices.SortStableFunc(dropped, func(a, b DroppedTarget) int {
		return cmp.Or(cmp.Compare(a.Job, b.Job),
			labels.Compare(labels.FromMap(a.DiscoveredLabels), labels.FromMap(b.DiscoveredLabels)))
	})
	return active, dropped
}

// Routes mounts GET /api/v1/probes (for web.Options.Routes). Parameters, as
// for /api/v1/targets: state=active|dropped|any (default any) and job=<name>.
// The answer is Prometheus' envelope:
//
//	{"status": "success", "data": {"activeTargets": [...], "droppedTargets": [...]}}
func (m *Manager) Routes(r gin.IRouter) {
	r.GET("/api/v1/probes", m.handleProbes)
}

func (m *Manager) handleProbes(c *gin.Context) {
	state := c.DefaultQuery("state", "any")
	if state != "any" && state != "active" && state != "dropped" {
		api.Fail(c, http.StatusBadRequest, api.ErrBadData, `state must be one of "active", "dropped" or "any"`)
		return
	}
	job := c.Query("job")
	active, dropped := m.Targets()
	if job != "" {
		active = slices.DeleteFunc(active, func(a ActiveTarget) bool { return a.Job != job })
		dropped = slices.DeleteFunc(dropped, func(d DroppedTarget) bool { return d.Job != job })
	}
	data := gin.H{"activeTargets": []ActiveTarget{}, "droppedTargets": []DroppedTarget{}}
	if state != "dropped" && active != nil {
		data["activeTargets"] = active
	}
	if state != "active" && dropped != nil {
		data["droppedTargets"] = dropped
	}
	api.Success(c, data)
}
