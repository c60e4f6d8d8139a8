package main

import (
	"math"
	"testing"
	"time"
)

func testProfile(t *testing.T, name string) *Profile {
	t.Helper()
	p, err := loadProfile("profiles.json", name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPlannedCounts(t *testing.T) {
	sch := newSchedule(testProfile(t, "full"))
	// ramp 60 s avg 1000, 180 s at 2000, spike 15 s avg 11000, 30 s at 20000,
	// recover 30 s avg 11000, 120 s at 2000, ramp-down 30 s avg 1000.
	want := []uint64{60_000, 360_000, 165_000, 600_000, 330_000, 240_000, 30_000}
	var total uint64
	for i, seg := range sch.Segments {
		if seg.Planned() != want[i] {
			t.Errorf("%s: planned %d, want %d", seg.Name, seg.Planned(), want[i])
		}
		total += seg.Planned()
	}
	if sch.Total != total || sch.End != 465 {
		t.Errorf("total %d end %v", sch.Total, sch.End)
	}
}

func TestDueIsInverseOfCum(t *testing.T) {
	sch := newSchedule(testProfile(t, "full"))
	for _, k := range []uint64{0, 1, 10, 59_999, 60_000, 300_000, 419_999, 420_000, 500_000, 1_000_000, sch.Total - 1} {
		due := sch.due(k)
		if got := sch.cum(due); math.Abs(got-float64(k+1)) > 1e-6 {
			t.Errorf("k=%d: due %.6f, cum(due)=%.6f", k, due, got)
		}
		if seg := sch.Segments[sch.segmentOf(k)]; due < seg.Start-1e-9 || due > seg.End+1e-9 {
			t.Errorf("k=%d due %.3f outside its segment %s", k, due, seg.Name)
		}
	}
	for k := uint64(1); k < sch.Total; k += 997 {
		if sch.due(k) < sch.due(k-1) {
			t.Fatalf("due not monotonic at %d", k)
		}
	}
}

func TestPacerDropsLateIterationsPerStage(t *testing.T) {
	sch := newSchedule(testProfile(t, "quick"))
	p := newPacer(sch, 100*time.Millisecond)
	// On time for the first 10 s.
	for p.next < sch.Total && sch.due(p.next) < 10 {
		if wait, stop := p.Pace(time.Duration(sch.due(p.next)*float64(time.Second)), 0); stop || wait < 0 {
			t.Fatal("unexpected stop")
		}
	}
	sentBefore := p.sent.Load()
	// Then the generator is stuck until t = 30 s: everything due in [10, 29.9) is dropped.
	p.Pace(30*time.Second, 0)
	dropped := float64(p.droppedTotal())
	want := sch.cum(29.9) - sch.cum(10)
	if math.Abs(dropped-want) > 2 {
		t.Errorf("dropped %.0f, want ~%.0f", dropped, want)
	}
	if p.dropped[0].Load() == 0 || p.dropped[1].Load() == 0 {
		t.Errorf("drops not split over ramp and sustain: %d %d", p.dropped[0].Load(), p.dropped[1].Load())
	}
	if p.sent.Load() != sentBefore+1 {
		t.Errorf("sent %d after the stall, want one more than %d", p.sent.Load(), sentBefore)
	}
	for {
		if _, stop := p.Pace(time.Hour, 0); stop {
			break
		}
	}
	if got := p.sent.Load() + p.droppedTotal(); got != sch.Total {
		t.Errorf("sent+dropped %d, planned %d", got, sch.Total)
	}
}

func TestThresholds(t *testing.T) {
	sch := newSchedule(testProfile(t, "quick"))
	data := make([]*stageData, len(sch.Segments))
	for i := range data {
		data[i] = &stageData{}
	}
	for i := range 100 {
		data[1].samples = append(data[1].samples, sample{us: uint32((i + 1) * 1000), code: 202})
	}
	data[1].samples = append(data[1].samples, sample{us: 500, code: 503}, sample{us: 700, code: 429})
	data[2].samples = append(data[2].samples, sample{us: 9_000_000, code: 0})
	all := selection{sch: sch, data: data, dropped: make([]uint64, len(sch.Segments)), stages: []int{0, 1, 2, 3}}
	ths, err := parseThresholds(map[string][]string{
		"http_req_duration{stage:sustain}":            {"p(95)<60", "max<=100"},
		"http_req_duration{stage:sustain,status:202}": {"med<51"},
		"http_req_failed{stage:sustain}":              {"rate<0.01"},
		"http_reqs{status:202}":                       {"count==100"},
	}, sch)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, th := range ths {
		r := th.evaluate(all, 90)
		got[r.Metric+" "+r.Condition] = r.OK
	}
	want := map[string]bool{
		"http_req_duration{stage:sustain} p(95)<60":          false, // p95 of 101 samples ~ 95 ms
		"http_req_duration{stage:sustain} max<=100":          true,  // the 9 s timeout was in the spike
		"http_req_duration{stage:sustain,status:202} med<51": true,
		"http_req_failed{stage:sustain} rate<0.01":           false, // 2 of 102
		"http_reqs{status:202} count==100":                   true,
	}
	for key, ok := range want {
		if got[key] != ok {
			t.Errorf("%s: ok=%v, want %v", key, got[key], ok)
		}
	}
	if _, err := parseThresholds(map[string][]string{"http_req_duration{stage:nope}": {"p(95)<1"}}, sch); err == nil {
		t.Error("unknown stage accepted")
	}
}

func TestEventBody(t *testing.T) {
	var total int
	for range 1000 {
		total += len(eventBody(nil, time.Now().Unix()))
	}
	if avg := total / 1000; avg < 370 || avg > 430 {
		t.Errorf("average body %d bytes, want ~400", avg)
	}
}
