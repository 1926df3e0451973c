package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/stats"
)

// Errors of the checks that run before a query is parsed.
var (
	ErrQueryTooLong = errors.New("query too long")
	ErrQueryTooDeep = errors.New("query nested too deeply")
)

// noStepSubqueryInterval is the step of a subquery written without one
// (`x[1h:]`), as in Prometheus' default global evaluation interval.
const noStepSubqueryInterval = time.Minute

// CheckQueryText refuses, without parsing it, an expression longer than
// maxLength bytes or deeper than maxDepth levels. It is linear in the length
// of qs and allocates only its nesting stack.
//
// The depth counted is an upper bound of the depth of the syntax tree the
// parser would build: each open bracket ( [ { adds a level, and so does each
// binary operator chained at the same level, because `a or b or c` parses as
// ((a or b) or c). Both kinds matter: PromQL's parser, its printer and the
// engine walk the tree recursively, and some of those walks are quadratic or
// cubic in its depth (formatting a 2,000-term `1+1+…` chain took 43 s, and
// parsing a 64 KB one 16 s). Brackets and operators inside string literals
// and comments do not count, nor do label matchers inside braces.
func CheckQueryText(qs string, maxLength, maxDepth int) error {
	if len(qs) > maxLength {
		return fmt.Errorf("%w: %d bytes, more than query.max_length (%d)", ErrQueryTooLong, len(qs), maxLength)
	}
	if !withinDepth(qs, maxDepth) {
		return fmt.Errorf("%w: more than %d levels of brackets and chained operators", ErrQueryTooDeep, maxDepth)
	}
	return nil
}

// withinDepth scans qs and reports whether its depth stays within max.
func withinDepth(qs string, max int) bool {
	type frame struct {
		braces bool // inside { }: label matchers, whose = and != are not operators
		chain  int  // binary operators chained in this frame so far
	}
	stack := []frame{{}}
	depth := 0 // open frames below the top level plus every frame's chain
	op := func() bool {
		top := &stack[len(stack)-1]
		if top.braces {
			return true
		}
		top.chain++
		depth++
		return depth <= max
	}
	for i := 0; i < len(qs); i++ {
		c := qs[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(qs, i)
		case c == '#':
			for i < len(qs) && qs[i] != '\n' {
				i++
			}
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, frame{braces: c == '{'})
			depth++
			if depth > max {
				return false
			}
		case c == ')' || c == ']' || c == '}':
			if len(stack) > 1 { // an unbalanced closer is the parser's to report
				depth -= 1 + stack[len(stack)-1].chain
				stack = stack[:len(stack)-1]
			}
		case c == '+' || c == '-' || c == '*' || c == '/' || c == '%' || c == '^':
			if !op() {
				return false
			}
		case c == '=' || c == '!' || c == '<' || c == '>':
			// ==, !=, <=, >= are one operator; a lone = or ! only occurs in
			// matchers (=, =~, !~) and is not one.
			two := i+1 < len(qs) && qs[i+1] == '='
			if two {
				i++
			}
			if (c == '<' || c == '>' || two) && !op() {
				return false
			}
		case isWordByte(c):
			j := i
			for j < len(qs) && isWordByte(qs[j]) {
				j++
			}
			if isOperatorWord(qs[i:j]) && !op() {
				return false
			}
			i = j - 1
		}
	}
	return true
}

// skipString returns the index of the quote closing the string literal that
// opens at qs[i], or the last index when it is unterminated.
func skipString(qs string, i int) int {
	q := qs[i]
	for i++; i < len(qs); i++ {
		switch qs[i] {
		case '\\':
			if q != '`' {
				i++
			}
		case q:
			return i
		}
	}
	return len(qs) - 1
}

func isWordByte(c byte) bool {
	return c == '_' || c == ':' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// isOperatorWord reports the binary operators spelt as words; PromQL
// keywords are case-insensitive.
func isOperatorWord(w string) bool {
	if len(w) < 2 || len(w) > 6 {
		return false
	}
	var b [6]byte
	for i := range len(w) {
		c := w[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	switch string(b[:len(w)]) {
	case "and", "or", "unless", "atan2":
		return true
	}
	return false
}

// workFactor bounds, as a multiple of query.max_samples, the points a range
// function may visit over a subquery for one series (see
// checkSamplesEstimate).
const workFactor = 10

// checkSamplesEstimate refuses, before anything is allocated, a statement
// that would hold more than maxSamples points for a single series in one
// subquery or in its steps, or visit more than workFactor×maxSamples points
// for a single series in a range function over a subquery.
//
// Memory: the engine only counts samples as it produces them, after it has
// sized its buffers for every step: count_over_time(vector(1)[2d:1ms])
// peaked at 5.4 GB before max_samples stopped it. Work: the engine checks
// its deadline once per series, not per step, in its loops over a
// selector's and a range function's steps, so count_over_time(up[30d:1ms])
// ran for 68 s under a 5 s timeout, and a range function over a wide
// subquery window at many steps runs for hours whatever the timeout. The estimates are lower bounds of the real counts (they assume
// one series), so they never refuse a query the engine would have
// completed with at least one series.
//
// The engine evaluates a subquery once over its parent's whole time span
// widened by the subquery's range, at the subquery's step; a nested
// subquery widens it again; a step-invariant part (an @ modifier, a
// constant) is evaluated at a single instant. A range function over a
// subquery visits, at each of its parent's steps, a window of the
// subquery's range.
func checkSamplesEstimate(stmt parser.Statement, maxSamples int) error {
	es, ok := stmt.(*parser.EvalStmt)
	if !ok {
		return nil
	}
	limit := int64(maxSamples)
	span := es.End.Sub(es.Start).Milliseconds()
	if es.Interval > 0 {
		if steps := span/max(es.Interval.Milliseconds(), 1) + 1; steps > limit {
			return promql.ErrTooManySamples(fmt.Sprintf("a range query of %d steps (query.max_samples is %d)", steps, limit))
		}
	}
	// evalContext is the time span (ms) and step (ms, 0 for an instant) over
	// which the children of path's last node are evaluated.
	evalContext := func(path []parser.Node) (span, step int64) {
		span, step = es.End.Sub(es.Start).Milliseconds(), es.Interval.Milliseconds()
		for _, a := range path {
			switch a := a.(type) {
			case *parser.StepInvariantExpr:
				span, step = 0, 0
			case *parser.SubqueryExpr:
				span += a.Range.Milliseconds()
				step = subqueryStep(a)
			}
		}
		return span, step
	}
	// memory checks what subquery sq, whose ancestors are path, holds.
	memory := func(sq *parser.SubqueryExpr, path []parser.Node) error {
		s, _ := evalContext(path)
		points := (s+sq.Range.Milliseconds())/subqueryStep(sq) + 1
		if points <= limit {
			return nil
		}
		return promql.ErrTooManySamples(fmt.Sprintf("subquery [%s:%s], estimated before evaluation at %d points per series (query.max_samples is %d)",
			model.Duration(sq.Range), model.Duration(time.Duration(subqueryStep(sq))*time.Millisecond), points, limit))
	}
	var err error
	parser.Inspect(es.Expr, func(n parser.Node, path []parser.Node) error {
		if err != nil {
			return err
		}
		switch n := n.(type) {
		case *parser.SubqueryExpr:
			err = memory(n, path)
		case *parser.Call:
			for _, arg := range n.Args {
				sq, ok := unwrap(arg).(*parser.SubqueryExpr)
				if !ok {
					continue
				}
				// Memory first: it is the graver refusal, and the one the
				// engine itself would have given.
				if err = memory(sq, append(path[:len(path):len(path)], n)); err != nil {
					return err
				}
				s, step := evalContext(path)
				steps := int64(1)
				if step > 0 {
					steps = s/step + 1
				}
				window := sq.Range.Milliseconds() / subqueryStep(sq)
				if window > workFactor*limit/steps {
					err = promql.ErrTooManySamplesRead(fmt.Sprintf("%s over subquery [%s:%s]: %d steps of %d points per series, estimated before evaluation (more than %d × query.max_samples %d)",
						n.Func.Name, model.Duration(sq.Range), model.Duration(time.Duration(subqueryStep(sq))*time.Millisecond), steps, window, workFactor, limit))
					return err
				}
			}
		}
		return err
	})
	return err
}

// subqueryStep is sq's step in milliseconds, at least 1.
func subqueryStep(sq *parser.SubqueryExpr) int64 {
	step := sq.Step
	if step <= 0 {
		step = noStepSubqueryInterval
	}
	return max(step.Milliseconds(), 1)
}

// unwrap removes the parentheses and step-invariance markers around e.
func unwrap(e parser.Expr) parser.Expr {
	for {
		switch x := e.(type) {
		case *parser.ParenExpr:
			e = x.Expr
		case *parser.StepInvariantExpr:
			e = x.Expr
		default:
			return e
		}
	}
}

// LimitedEngine is the engine as the HTTP API sees it: before a query is
// evaluated it checks the expression's length and depth (CheckQueryText) and
// estimates what its subqueries would hold in memory. Concurrency is bounded
// in the engine itself (NewEngine), so that it also covers rules and
// autoscaling queries.
type LimitedEngine struct {
	engine *promql.Engine
	cfg    QueryConfig
}

var _ promql.QueryEngine = (*LimitedEngine)(nil)

// NewLimitedEngine wraps e, which NewEngine built from c.
func NewLimitedEngine(e *promql.Engine, c QueryConfig) *LimitedEngine {
	return &LimitedEngine{engine: e, cfg: c}
}

// NewInstantQuery implements promql.QueryEngine. A too-long or too-deep
// expression is an error here (the API answers 400 bad_data); a query that
// would load too many samples fails on Exec with promql.ErrTooManySamples
// (422), as it would have had it run.
func (e *LimitedEngine) NewInstantQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	return e.newQuery(ctx, qs, func(ctx context.Context) (promql.Query, error) {
		return e.engine.NewInstantQuery(ctx, q, opts, qs, ts)
	})
}

// NewRangeQuery implements promql.QueryEngine, as NewInstantQuery.
func (e *LimitedEngine) NewRangeQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, interval time.Duration) (promql.Query, error) {
	return e.newQuery(ctx, qs, func(ctx context.Context) (promql.Query, error) {
		return e.engine.NewRangeQuery(ctx, q, opts, qs, start, end, interval)
	})
}

func (e *LimitedEngine) newQuery(ctx context.Context, qs string, build func(context.Context) (promql.Query, error)) (promql.Query, error) {
	if err := CheckQueryText(qs, e.cfg.MaxLength, e.cfg.MaxDepth); err != nil {
		return nil, err
	}
	// The engine parses holding a query slot, so building a query can wait
	// in the queue: bound that wait by query.timeout too (the engine only
	// bounds Exec), and report it as Exec would, not as a bad expression.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(e.cfg.Timeout))
	defer cancel()
	qry, err := build(ctx)
	if err != nil {
		var (
			timeout  promql.ErrQueryTimeout
			canceled promql.ErrQueryCanceled
		)
		if errors.As(err, &timeout) || errors.As(err, &canceled) {
			return failedQuery{qs: qs, err: err}, nil
		}
		return nil, err
	}
	return e.estimate(qry), nil
}

func (e *LimitedEngine) estimate(qry promql.Query) promql.Query {
	if err := checkSamplesEstimate(qry.Statement(), e.cfg.MaxSamples); err != nil {
		return refusedQuery{Query: qry, err: err}
	}
	return qry
}

// refusedQuery is a query the estimate refused: Exec fails at once.
type refusedQuery struct {
	promql.Query
	err error
}

func (r refusedQuery) Exec(context.Context) *promql.Result { return &promql.Result{Err: r.err} }

// failedQuery is a query the engine could not build in time: Exec fails at
// once.
type failedQuery struct {
	qs  string
	err error
}

var _ promql.Query = failedQuery{}

func (f failedQuery) Exec(context.Context) *promql.Result { return &promql.Result{Err: f.err} }
func (failedQuery) Close()                                {}
func (failedQuery) Statement() parser.Statement           { return &parser.EvalStmt{} }
func (failedQuery) Cancel()                               {}
func (f failedQuery) String() string                      { return f.qs }
func (failedQuery) Stats() *stats.Statistics {
	return &stats.Statistics{Timers: stats.NewQueryTimers(), Samples: stats.NewQuerySamples(false)}
}
