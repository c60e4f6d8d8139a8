package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sync/atomic"
	"time"
)

// Duration reads "1m", "15s", "100ms" from JSON.
type Duration time.Duration

func (d *Duration) UnmarshalJSON(raw []byte) error {
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return fmt.Errorf("duration must be a string like \"30s\": %s", raw)
	}
	parsed, err := time.ParseDuration(text)
	if err != nil {
		return err
	}
	*d = Duration(parsed)
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d Duration) Seconds() float64 { return time.Duration(d).Seconds() }

// Stage is one k6 stage: the arrival rate moves linearly to Target over Duration.
type Stage struct {
	Name     string   `json:"name"`
	Duration Duration `json:"duration"`
	Target   float64  `json:"target"`
}

// Profile mirrors the options of k6's ramping-arrival-rate executor.
type Profile struct {
	Description     string              `json:"description,omitempty"`
	Executor        string              `json:"executor"`
	StartRate       float64             `json:"startRate"`
	TimeUnit        Duration            `json:"timeUnit"`
	PreAllocatedVUs uint64              `json:"preAllocatedVUs"`
	MaxVUs          uint64              `json:"maxVUs"`
	Timeout         Duration            `json:"timeout"`
	GracefulStop    Duration            `json:"gracefulStop"`
	MaxLag          Duration            `json:"maxLag"`
	Stages          []Stage             `json:"stages"`
	Thresholds      map[string][]string `json:"thresholds"`
}

func loadProfile(path, name string) (*Profile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	entry, ok := all[name]
	if !ok {
		names := []string{}
		for key := range all {
			if key[0] != '_' {
				names = append(names, key)
			}
		}
		return nil, fmt.Errorf("%s: no profile %q (have %v)", path, name, names)
	}
	p := &Profile{
		Executor:     "ramping-arrival-rate",
		TimeUnit:     Duration(time.Second),
		Timeout:      Duration(60 * time.Second), // k6's default request timeout
		GracefulStop: Duration(30 * time.Second), // k6's default for arrival-rate executors
		MaxLag:       Duration(100 * time.Millisecond),
	}
	if err := json.Unmarshal(entry, p); err != nil {
		return nil, fmt.Errorf("%s: profile %s: %w", path, name, err)
	}
	switch {
	case p.Executor != "ramping-arrival-rate":
		return nil, fmt.Errorf("profile %s: only the ramping-arrival-rate executor is implemented", name)
	case len(p.Stages) == 0:
		return nil, fmt.Errorf("profile %s: no stages", name)
	case p.PreAllocatedVUs == 0 || p.MaxVUs < p.PreAllocatedVUs:
		return nil, fmt.Errorf("profile %s: need 0 < preAllocatedVUs <= maxVUs", name)
	case p.TimeUnit <= 0:
		return nil, fmt.Errorf("profile %s: timeUnit must be positive", name)
	}
	for _, stage := range p.Stages {
		if stage.Duration <= 0 || stage.Target < 0 || stage.Name == "" {
			return nil, fmt.Errorf("profile %s: each stage needs a name, a positive duration, a target >= 0", name)
		}
	}
	return p, nil
}

// segment is one stage on the time axis, rates in iterations per second.
type segment struct {
	Name       string
	Index      int
	Start, End float64 // seconds from the start of the run
	From, To   float64 // arrival rate at Start and End, per second
	N0, N1     float64 // planned iterations (cumulative) at Start and End
}

func (s segment) Duration() float64 { return s.End - s.Start }

// Planned iterations whose start time falls in this segment.
func (s segment) Planned() uint64 { return uint64(math.Floor(s.N1)) - uint64(math.Floor(s.N0)) }

// schedule is the piecewise-linear arrival rate r(t) and its integral N(t). Iteration k (from 0)
// is due at the time t_k where N(t_k) = k + 1.
type schedule struct {
	Segments []segment
	Total    uint64 // planned iterations
	End      float64
}

func newSchedule(p *Profile) *schedule {
	unit := p.TimeUnit.Seconds()
	s := &schedule{}
	t, rate, n := 0.0, p.StartRate/unit, 0.0
	for i, stage := range p.Stages {
		d := stage.Duration.Seconds()
		to := stage.Target / unit
		seg := segment{Name: stage.Name, Index: i, Start: t, End: t + d, From: rate, To: to, N0: n}
		n += (rate + to) / 2 * d
		seg.N1 = n
		s.Segments = append(s.Segments, seg)
		t, rate = t+d, to
	}
	s.End = t
	s.Total = uint64(math.Floor(n))
	return s
}

func (s *schedule) segmentAt(t float64) int {
	for i := range s.Segments {
		if t < s.Segments[i].End {
			return i
		}
	}
	return len(s.Segments) - 1
}

// cum is N(t): iterations planned up to t.
func (s *schedule) cum(t float64) float64 {
	if t <= 0 {
		return 0
	}
	if t >= s.End {
		return s.Segments[len(s.Segments)-1].N1
	}
	seg := s.Segments[s.segmentAt(t)]
	tau, d := t-seg.Start, seg.Duration()
	return seg.N0 + seg.From*tau + (seg.To-seg.From)/(2*d)*tau*tau
}

// due is t_k, the start time of iteration k.
func (s *schedule) due(k uint64) float64 {
	want := float64(k + 1)
	for _, seg := range s.Segments {
		if want > seg.N1 {
			continue
		}
		x := want - seg.N0
		if x <= 0 {
			return seg.Start
		}
		// Solve From*tau + (To-From)/(2D)*tau^2 = x; this form is stable when To ~ From.
		root := math.Sqrt(seg.From*seg.From + 2*(seg.To-seg.From)*x/seg.Duration())
		return seg.Start + 2*x/(seg.From+root)
	}
	return s.End
}

// segmentOf is the segment that iteration k starts in.
func (s *schedule) segmentOf(k uint64) int {
	want := float64(k + 1)
	for i, seg := range s.Segments {
		if want <= seg.N1 {
			return i
		}
	}
	return len(s.Segments) - 1
}

// pacer implements vegeta's Pacer with k6's arrival-rate semantics: iterations are due at fixed
// times whatever the server does; one that could not start within maxLag of its time (every worker
// busy and maxVUs reached, or the generator itself starved of CPU) is dropped and counted, never
// sent late in a burst. vegeta calls Pace from one goroutine; the counters are read concurrently.
type pacer struct {
	sch     *schedule
	maxLag  float64
	next    uint64 // next iteration index to consider
	sent    atomic.Uint64
	dropped []atomic.Uint64 // per segment
}

func newPacer(sch *schedule, maxLag time.Duration) *pacer {
	return &pacer{sch: sch, maxLag: maxLag.Seconds(), dropped: make([]atomic.Uint64, len(sch.Segments))}
}

func (p *pacer) Pace(elapsed time.Duration, _ uint64) (time.Duration, bool) {
	now := elapsed.Seconds()
	if p.next >= p.sch.Total {
		return 0, true
	}
	if now-p.sch.due(p.next) > p.maxLag {
		// First iteration still within maxLag: the smallest k with t_k >= now - maxLag.
		first := uint64(math.Max(math.Ceil(p.sch.cum(now-p.maxLag))-1, 0))
		first = max(first, p.next)
		first = min(first, p.sch.Total)
		p.drop(p.next, first)
		p.next = first
		if p.next >= p.sch.Total {
			return 0, true
		}
	}
	due := p.sch.due(p.next)
	p.next++
	p.sent.Add(1)
	wait := time.Duration((due - now) * float64(time.Second))
	return max(wait, 0), false
}

// drop counts iterations [from, to) against the segments they were due in.
func (p *pacer) drop(from, to uint64) {
	for from < to {
		i := p.segmentOf(from)
		last := uint64(math.Floor(p.sch.Segments[i].N1)) // iterations k < last are due by segment end
		n := min(to, max(last, from+1)) - from
		p.dropped[i].Add(n)
		from += n
	}
}

func (p *pacer) segmentOf(k uint64) int { return p.sch.segmentOf(k) }

// Rate is the arrival rate due at elapsed, in hits per second (vegeta.Pacer).
func (p *pacer) Rate(elapsed time.Duration) float64 {
	t := elapsed.Seconds()
	if t < 0 || t >= p.sch.End {
		return 0
	}
	seg := p.sch.Segments[p.sch.segmentAt(t)]
	return seg.From + (seg.To-seg.From)*(t-seg.Start)/seg.Duration()
}

func (p *pacer) droppedTotal() uint64 {
	var n uint64
	for i := range p.dropped {
		n += p.dropped[i].Load()
	}
	return n
}
