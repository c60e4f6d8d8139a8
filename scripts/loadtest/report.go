package main

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// sample is one request: its duration (µs, capped at ~71 min) and status (0 = no HTTP answer:
// timeout, refused, reset, or cut at the graceful stop).
type sample struct {
	us   uint32
	code uint16
}

// stageData collects every request that started in one stage (segment).
type stageData struct {
	samples []sample
	errors  map[string]uint64 // transport errors and the first bytes of non-202 answers
}

const maxErrorKinds = 20

func (d *stageData) addError(text string) {
	if d.errors == nil {
		d.errors = map[string]uint64{}
	}
	if _, seen := d.errors[text]; seen || len(d.errors) < maxErrorKinds {
		d.errors[text]++
	}
}

// LatencyMS is http_req_duration over a set of requests, in milliseconds.
type LatencyMS struct {
	Min float64 `json:"min"`
	Avg float64 `json:"avg"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Summary is the figures of one stage, one group of stages (same name) or the whole run.
type Summary struct {
	Name            string            `json:"name"`
	Stages          []int             `json:"stages"`
	DurationS       float64           `json:"duration_s"`
	RateFrom        float64           `json:"rate_from_per_s"`
	RateTo          float64           `json:"rate_to_per_s"`
	Planned         uint64            `json:"planned"`
	Sent            uint64            `json:"sent"`
	Dropped         uint64            `json:"dropped_iterations"`
	Accepted        uint64            `json:"accepted_202"`
	Shed503         uint64            `json:"shed_503"`
	Shed429         uint64            `json:"shed_429"`
	OtherStatus     uint64            `json:"other_status"`
	TransportErrors uint64            `json:"no_answer"`
	ErrorRate       float64           `json:"http_req_failed_rate"`
	SentPerS        float64           `json:"sent_per_s"`
	AcceptedPerS    float64           `json:"accepted_per_s"`
	Latency         LatencyMS         `json:"http_req_duration_ms"`
	StatusCounts    map[string]uint64 `json:"status_counts"`
	Errors          map[string]uint64 `json:"error_samples,omitempty"`
}

// selection is the requests of some stages, optionally of some statuses only.
type selection struct {
	sch     *schedule
	data    []*stageData
	dropped []uint64
	stages  []int
	status  map[uint16]bool // nil: every status
}

func (s selection) each(fn func(sample)) {
	for _, i := range s.stages {
		for _, smp := range s.data[i].samples {
			if s.status == nil || s.status[smp.code] {
				fn(smp)
			}
		}
	}
}

func (s selection) durationS(wholeRun float64) float64 {
	if len(s.stages) == len(s.sch.Segments) {
		return wholeRun // the run as k6 counts it: until the last answer
	}
	var d float64
	for _, i := range s.stages {
		d += s.sch.Segments[i].Duration()
	}
	return d
}

func (s selection) latencies() []float64 {
	var out []float64
	s.each(func(smp sample) { out = append(out, float64(smp.us)/1000) })
	slices.Sort(out)
	return out
}

// percentile interpolates linearly between closest ranks, as k6 does.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}

func (s selection) summary(name string, wholeRun float64) Summary {
	sum := Summary{Name: name, Stages: s.stages, StatusCounts: map[string]uint64{}}
	sum.DurationS = s.durationS(wholeRun)
	first, last := s.sch.Segments[s.stages[0]], s.sch.Segments[s.stages[len(s.stages)-1]]
	sum.RateFrom, sum.RateTo = first.From, last.To
	var total float64
	s.each(func(smp sample) {
		sum.Sent++
		total += float64(smp.us) / 1000
		switch smp.code {
		case 202:
			sum.Accepted++
		case 503:
			sum.Shed503++
		case 429:
			sum.Shed429++
		case 0:
			sum.TransportErrors++
		default:
			sum.OtherStatus++
		}
		key := strconv.Itoa(int(smp.code))
		if smp.code == 0 {
			key = "no answer"
		}
		sum.StatusCounts[key]++
	})
	for _, i := range s.stages {
		sum.Planned += s.sch.Segments[i].Planned()
		sum.Dropped += s.dropped[i]
		for text, n := range s.data[i].errors {
			if sum.Errors == nil {
				sum.Errors = map[string]uint64{}
			}
			sum.Errors[text] += n
		}
	}
	if sum.Sent > 0 {
		sum.ErrorRate = float64(sum.Sent-sum.Accepted) / float64(sum.Sent)
		lat := s.latencies()
		sum.Latency = LatencyMS{
			Min: lat[0], Avg: total / float64(sum.Sent), P50: percentile(lat, 50), P90: percentile(lat, 90),
			P95: percentile(lat, 95), P99: percentile(lat, 99), Max: lat[len(lat)-1],
		}
	}
	if sum.DurationS > 0 {
		sum.SentPerS = float64(sum.Sent) / sum.DurationS
		sum.AcceptedPerS = float64(sum.Accepted) / sum.DurationS
	}
	return sum
}

// --- thresholds: a k6 subset ------------------------------------------------------------------
//
//   "http_req_duration{stage:sustain}": ["p(95)<60", "p(99)<150"]   milliseconds; avg|min|med|max|p(N)
//   "http_req_failed{stage:sustain}":   ["rate<0.01"]               share of requests not answered 202
//   "http_reqs{status:202}":            ["rate>=3000"]              count, or rate = count per second
//   "dropped_iterations":               ["count==0"]                count, rate
//
// Tags: stage:<stage name> (every stage of that name) and status:<code> (0 = no HTTP answer).

var (
	thresholdKey  = regexp.MustCompile(`^(http_req_duration|http_req_failed|http_reqs|dropped_iterations)(?:\{([^}]*)\})?$`)
	thresholdExpr = regexp.MustCompile(`^\s*(avg|min|med|max|count|rate|p\((\d+(?:\.\d+)?)\))\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$`)
)

// ThresholdResult is one condition checked after the run.
type ThresholdResult struct {
	Metric    string  `json:"metric"`
	Condition string  `json:"condition"`
	Actual    float64 `json:"actual"`
	Samples   uint64  `json:"samples"`
	OK        bool    `json:"ok"`
	Note      string  `json:"note,omitempty"`
}

type threshold struct {
	key, expr, metric, agg, op string
	pct, limit                 float64
	stageName                  string
	status                     map[uint16]bool
}

func parseThresholds(spec map[string][]string, sch *schedule) ([]threshold, error) {
	var out []threshold
	keys := make([]string, 0, len(spec))
	for key := range spec {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		m := thresholdKey.FindStringSubmatch(strings.ReplaceAll(key, " ", ""))
		if m == nil {
			return nil, fmt.Errorf("threshold %q: unknown metric (http_req_duration, http_req_failed, http_reqs, dropped_iterations)", key)
		}
		base := threshold{key: key, metric: m[1]}
		if m[2] != "" {
			for _, tag := range strings.Split(m[2], ",") {
				name, value, ok := strings.Cut(tag, ":")
				switch {
				case ok && name == "stage":
					if !slices.ContainsFunc(sch.Segments, func(s segment) bool { return s.Name == value }) {
						return nil, fmt.Errorf("threshold %q: no stage named %q", key, value)
					}
					base.stageName = value
				case ok && name == "status":
					code, err := strconv.Atoi(value)
					if err != nil {
						return nil, fmt.Errorf("threshold %q: status must be a number", key)
					}
					base.status = map[uint16]bool{uint16(code): true}
				default:
					return nil, fmt.Errorf("threshold %q: tag %q (stage:NAME or status:CODE)", key, tag)
				}
			}
		}
		for _, expr := range spec[key] {
			e := thresholdExpr.FindStringSubmatch(expr)
			if e == nil {
				return nil, fmt.Errorf("threshold %q: cannot read %q", key, expr)
			}
			t := base
			t.expr, t.agg, t.op = expr, e[1], e[3]
			if e[2] != "" {
				t.agg = "p"
				t.pct, _ = strconv.ParseFloat(e[2], 64)
			}
			t.limit, _ = strconv.ParseFloat(e[4], 64)
			allowed := map[string]string{
				"http_req_duration": "avg min med max p", "http_req_failed": "rate",
				"http_reqs": "count rate", "dropped_iterations": "count rate",
			}[t.metric]
			if !slices.Contains(strings.Fields(allowed), t.agg) {
				return nil, fmt.Errorf("threshold %q: %s takes %s", key, t.metric, allowed)
			}
			out = append(out, t)
		}
	}
	return out, nil
}

func (t threshold) evaluate(all selection, wholeRun float64) ThresholdResult {
	sel := all
	sel.status = t.status
	if t.stageName != "" {
		sel.stages = nil
		for _, seg := range all.sch.Segments {
			if seg.Name == t.stageName {
				sel.stages = append(sel.stages, seg.Index)
			}
		}
	}
	r := ThresholdResult{Metric: t.key, Condition: t.expr}
	var samples uint64
	sel.each(func(sample) { samples++ })
	r.Samples = samples
	switch t.metric {
	case "http_req_duration":
		lat := sel.latencies()
		if len(lat) == 0 {
			r.Note = "no requests"
			return r
		}
		switch t.agg {
		case "avg":
			var s float64
			for _, v := range lat {
				s += v
			}
			r.Actual = s / float64(len(lat))
		case "min":
			r.Actual = lat[0]
		case "max":
			r.Actual = lat[len(lat)-1]
		case "med":
			r.Actual = percentile(lat, 50)
		case "p":
			r.Actual = percentile(lat, t.pct)
		}
	case "http_req_failed":
		if samples == 0 {
			r.Note = "no requests"
			return r
		}
		var failed uint64
		sel.each(func(smp sample) {
			if smp.code != 202 {
				failed++
			}
		})
		r.Actual = float64(failed) / float64(samples)
	case "http_reqs", "dropped_iterations":
		n := float64(samples)
		if t.metric == "dropped_iterations" {
			n = 0
			for _, i := range sel.stages {
				n += float64(sel.dropped[i])
			}
			r.Samples = uint64(n)
		}
		r.Actual = n
		if t.agg == "rate" {
			r.Actual = n / sel.durationS(wholeRun)
		}
	}
	r.OK = compare(r.Actual, t.op, t.limit)
	return r
}

func compare(a float64, op string, b float64) bool {
	switch op {
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	case ">=":
		return a >= b
	case "==":
		return a == b
	default:
		return a != b
	}
}

// --- printing ---------------------------------------------------------------------------------

func printTable(w io.Writer, rows []Summary) {
	fmt.Fprintf(w, "%-18s %6s %13s %9s %9s %8s %9s %8s %6s %6s %6s %7s %8s %8s %8s %8s %8s\n",
		"stage", "time", "rate/s", "planned", "sent", "dropped", "202", "503", "429", "other", "no-ans",
		"failed", "p50 ms", "p95 ms", "p99 ms", "max ms", "202/s")
	for _, r := range rows {
		rate := fmt.Sprintf("%.0f→%.0f", r.RateFrom, r.RateTo)
		if r.RateFrom == r.RateTo {
			rate = fmt.Sprintf("%.0f", r.RateTo)
		}
		if len(r.Stages) > 1 {
			rate = "-"
		}
		fmt.Fprintf(w, "%-18s %5.0fs %13s %9d %9d %8d %9d %8d %6d %6d %6d %6.2f%% %8.1f %8.1f %8.1f %8.1f %8.1f\n",
			r.Name, r.DurationS, rate, r.Planned, r.Sent, r.Dropped, r.Accepted, r.Shed503, r.Shed429,
			r.OtherStatus, r.TransportErrors, 100*r.ErrorRate, r.Latency.P50, r.Latency.P95, r.Latency.P99,
			r.Latency.Max, r.AcceptedPerS)
	}
}

func printThresholds(w io.Writer, results []ThresholdResult) {
	for _, r := range results {
		mark := "✓"
		if !r.OK {
			mark = "✗"
		}
		actual := strconv.FormatFloat(r.Actual, 'f', 3, 64)
		if r.Note != "" {
			actual = r.Note
		}
		fmt.Fprintf(w, "  %s %-40s %-14s actual %s (%d samples)\n", mark, r.Metric, r.Condition, actual, r.Samples)
	}
}

func topErrors(errors map[string]uint64, n int) []string {
	type kv struct {
		text  string
		count uint64
	}
	var all []kv
	for text, count := range errors {
		all = append(all, kv{text, count})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].count > all[j].count })
	var out []string
	for i := 0; i < len(all) && i < n; i++ {
		out = append(out, fmt.Sprintf("%8d × %s", all[i].count, all[i].text))
	}
	return out
}
