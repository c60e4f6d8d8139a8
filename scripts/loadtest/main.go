// weir-loadtest drives POST /events with an open-model load profile: k6's ramping-arrival-rate
// executor (stages, preAllocatedVUs/maxVUs, thresholds with stage tags) on the vegeta library.
// k6 itself is AGPL-licensed and not used by this project; the profile format in profiles.json
// keeps k6's option names so a profile reads the same.
//
//	weir-loadtest -profiles scripts/loadtest/profiles.json -profile quick -url http://127.0.0.1:8080
//	weir-loadtest ... -plan        print the stages and planned requests, send nothing
//
// Every request carries one fresh event of ~400 bytes. A 202 is success; 503 and 429 (load
// shedding) are counted apart from other failures but, like them, count in http_req_failed.
// Requests are tagged with the stage they started in; thresholds select stages by name, so
// `http_req_duration{stage:sustain}` covers both sustain stages. Prints a progress line every
// -progress, then the summary; writes it as JSON to -out. Exit: 0 thresholds passed, 99 a
// threshold failed (as k6), 130 interrupted, 1 error.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Report is the JSON written to -out.
type Report struct {
	RecordedAt     string             `json:"recorded_at"`
	Tool           string             `json:"tool"`
	ProfileName    string             `json:"profile_name"`
	Profile        *Profile           `json:"profile"`
	Target         string             `json:"target"`
	Machine        map[string]any     `json:"machine"`
	ElapsedS       float64            `json:"elapsed_s"`
	Interrupted    bool               `json:"interrupted"`
	CutAtStop      uint64             `json:"cut_at_graceful_stop"`
	MaxInFlight    uint64             `json:"max_in_flight"`
	Stages         []Summary          `json:"stages"`
	Groups         []Summary          `json:"groups"`
	Total          Summary            `json:"total"`
	Thresholds     []ThresholdResult  `json:"thresholds"`
	Passed         bool               `json:"passed"`
	CPUCores       map[string]float64 `json:"cpu_cores"`
	AcceptedPerSec float64            `json:"accepted_per_s_whole_run"`
}

type watchList []string

func (w *watchList) String() string     { return strings.Join(*w, ",") }
func (w *watchList) Set(v string) error { *w = append(*w, v); return nil }

func main() {
	os.Exit(run())
}

func run() int {
	profiles := flag.String("profiles", "scripts/loadtest/profiles.json", "profiles file")
	name := flag.String("profile", "full", "profile name in the profiles file")
	base := flag.String("url", "http://127.0.0.1:8080", "API base URL (POST <url>/events)")
	out := flag.String("out", "", "write the JSON summary here")
	plan := flag.Bool("plan", false, "print the stages and planned requests, then exit")
	progress := flag.Duration("progress", 10*time.Second, "progress line interval (0: none)")
	var watch watchList
	flag.Var(&watch, "watch", "NAME=PID: report the CPU of that process tree (repeatable)")
	flag.Parse()

	p, err := loadProfile(*profiles, *name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "weir-loadtest:", err)
		return 1
	}
	sch := newSchedule(p)
	thresholds, err := parseThresholds(p.Thresholds, sch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "weir-loadtest:", err)
		return 1
	}
	fmt.Printf("profile %s: %s, %d stages, %s, %d requests planned, workers %d..%d (preAllocatedVUs..maxVUs)\n",
		*name, p.Executor, len(sch.Segments), time.Duration(sch.End*float64(time.Second)), sch.Total,
		p.PreAllocatedVUs, p.MaxVUs)
	if *plan {
		for _, seg := range sch.Segments {
			fmt.Printf("  %-10s %6.0fs..%6.0fs  %6.0f → %6.0f /s  %9d planned\n",
				seg.Name, seg.Start, seg.End, seg.From, seg.To, seg.Planned())
		}
		return 0
	}
	url := strings.TrimRight(*base, "/") + "/events"
	fmt.Printf("target POST %s\n", url)
	if err := preflight(url); err != nil {
		fmt.Fprintln(os.Stderr, "weir-loadtest: preflight:", err)
		return 1
	}

	conns := &connTracker{open: map[net.Conn]struct{}{}}
	transport := &http.Transport{
		DialContext:         conns.dial,
		MaxIdleConnsPerHost: int(p.MaxVUs),
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	client := &http.Client{Transport: transport, Timeout: time.Duration(p.Timeout)}
	attacker := vegeta.NewAttacker(
		vegeta.Client(client),
		vegeta.Workers(p.PreAllocatedVUs),
		vegeta.MaxWorkers(p.MaxVUs),
		vegeta.MaxBody(512),
	)
	pace := newPacer(sch, time.Duration(p.MaxLag))

	var interrupted, cut atomic.Bool
	stopNow := func() {
		attacker.Stop()
		conns.closeAll()
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		fmt.Println("\ninterrupted: stopping, summary of what ran follows")
		interrupted.Store(true)
		stopNow()
	}()
	// k6's gracefulStop: requests still running this long after the last stage are cut.
	graceful := time.Duration(sch.End*float64(time.Second)) + time.Duration(p.GracefulStop)
	hardStop := time.AfterFunc(graceful, func() { cut.Store(true); stopNow() })
	defer hardStop.Stop()

	cpuStart := cpuSnapshot(watch)
	loadStart := loadavg()
	data := make([]*stageData, len(sch.Segments))
	for i := range data {
		data[i] = &stageData{}
	}
	var (
		received, maxInFlight, cutCount uint64
		window                          []float64
		win202, winShed, winFail        uint64
		last                            time.Time
	)
	// The progress line is printed on a timer, so it also shows up while no answer comes back.
	tick := make(<-chan time.Time)
	if *progress > 0 {
		ticker := time.NewTicker(*progress)
		defer ticker.Stop()
		tick = ticker.C
	}
	began := time.Now()
	winStart := began
	results := attacker.Attack(eventTargeter(url), pace, 0, "")
	for results != nil {
		select {
		case now := <-tick:
			secs := now.Sub(winStart).Seconds()
			t := now.Sub(began).Seconds()
			seg := sch.Segments[sch.segmentAt(t)]
			label, target := seg.Name, seg.From+(seg.To-seg.From)*min(1, (t-seg.Start)/seg.Duration())
			if t > sch.End {
				label, target = "(stopping)", 0
			}
			slices.Sort(window)
			fmt.Printf("t=%4.0fs %-10s target %6.0f/s | answered %6.0f/s: 202 %6.0f/s, shed %5.0f/s, failed %5.0f/s | p95 %8.1f ms | in flight %5d | dropped %d\n",
				t, label, target, float64(len(window))/secs, float64(win202)/secs, float64(winShed)/secs,
				float64(winFail)/secs, percentile(window, 95), pace.sent.Load()-received, pace.droppedTotal())
			window, win202, winShed, winFail, winStart = window[:0], 0, 0, 0, now
		case res, ok := <-results:
			if !ok {
				results = nil
				break
			}
			received++
			i := sch.segmentAt(res.Timestamp.Sub(began).Seconds())
			code := res.Code
			if res.Error != "" && code == 0 {
				if cut.Load() || interrupted.Load() {
					cutCount++
				}
				data[i].addError(shorten(res.Error))
			} else if code != 202 {
				data[i].addError(fmt.Sprintf("%d %s", code, shorten(string(res.Body))))
			}
			us := res.Latency.Microseconds()
			data[i].samples = append(data[i].samples, sample{us: uint32(min(us, int64(^uint32(0)))), code: code})
			if end := res.End(); end.After(last) {
				last = end
			}
			if inFlight := pace.sent.Load() - received; inFlight > maxInFlight {
				maxInFlight = inFlight
			}
			if *progress > 0 {
				window = append(window, float64(us)/1000)
				switch code {
				case 202:
					win202++
				case 503, 429:
					winShed++
				default:
					winFail++
				}
			}
		}
	}
	elapsed := time.Since(began).Seconds()
	if !last.IsZero() {
		elapsed = max(last.Sub(began).Seconds(), min(elapsed, sch.End))
	}
	cpu := cpuUsage(cpuStart, cpuSnapshot(watch), time.Since(began).Seconds())

	dropped := make([]uint64, len(sch.Segments))
	for i := range dropped {
		dropped[i] = pace.dropped[i].Load()
	}
	all := selection{sch: sch, data: data, dropped: dropped}
	for i := range sch.Segments {
		all.stages = append(all.stages, i)
	}
	report := Report{
		RecordedAt:  time.Now().UTC().Format(time.RFC3339),
		Tool:        "scripts/loadtest (Go, vegeta " + vegetaVersion() + ")",
		ProfileName: *name,
		Profile:     p,
		Target:      url,
		Machine: map[string]any{
			"cores": runtime.NumCPU(), "loadavg_start": loadStart, "loadavg_end": loadavg(),
		},
		ElapsedS:    elapsed,
		Interrupted: interrupted.Load(),
		CutAtStop:   cutCount,
		MaxInFlight: maxInFlight,
		CPUCores:    cpu,
	}
	for _, seg := range sch.Segments {
		one := all
		one.stages = []int{seg.Index}
		report.Stages = append(report.Stages, one.summary(seg.Name, elapsed))
	}
	var names []string
	for _, seg := range sch.Segments {
		if !slices.Contains(names, seg.Name) {
			names = append(names, seg.Name)
		}
	}
	for _, n := range names {
		group := all
		group.stages = nil
		for _, seg := range sch.Segments {
			if seg.Name == n {
				group.stages = append(group.stages, seg.Index)
			}
		}
		if len(group.stages) > 1 {
			report.Groups = append(report.Groups, group.summary("stage:"+n, elapsed))
		}
	}
	report.Total = all.summary("whole run", elapsed)
	report.AcceptedPerSec = report.Total.AcceptedPerS
	report.Passed = true
	for _, t := range thresholds {
		r := t.evaluate(all, elapsed)
		report.Thresholds = append(report.Thresholds, r)
		report.Passed = report.Passed && r.OK
	}

	fmt.Println()
	rows := append(append(slices.Clone(report.Stages), report.Groups...), report.Total)
	printTable(os.Stdout, rows)
	fmt.Println("\nthresholds:")
	printThresholds(os.Stdout, report.Thresholds)
	fmt.Printf("\naccepted (202): %.1f req/s on average over the whole run (%d in %.1f s); %d of %d planned requests sent, %d dropped\n",
		report.AcceptedPerSec, report.Total.Accepted, elapsed, report.Total.Sent, report.Total.Planned, report.Total.Dropped)
	fmt.Printf("most in flight at once: %d (maxVUs %d); cut at the graceful stop: %d\n", maxInFlight, p.MaxVUs, cutCount)
	if len(cpu) > 0 {
		var parts []string
		for _, key := range sortedKeys(cpu) {
			parts = append(parts, fmt.Sprintf("%s %.2f", key, cpu[key]))
		}
		fmt.Printf("CPU (cores, average): %s; machine: %d cores, load average %s → %s\n",
			strings.Join(parts, ", "), runtime.NumCPU(), loadStart, loadavg())
	}
	if lines := topErrors(report.Total.Errors, 6); len(lines) > 0 {
		fmt.Println("answers other than 202 (most frequent):")
		for _, line := range lines {
			fmt.Println(line)
		}
	}
	if report.Passed {
		fmt.Println("\nthresholds: all passed")
	} else {
		fmt.Println("\nthresholds: FAILED")
	}
	if *out != "" {
		if err := writeJSON(*out, report); err != nil {
			fmt.Fprintln(os.Stderr, "weir-loadtest:", err)
			return 1
		}
		fmt.Println("wrote", *out)
	}
	switch {
	case interrupted.Load():
		return 130
	case !report.Passed:
		return 99
	}
	return 0
}

// preflight sends one event and wants a 202, so a wrong URL or a payload the API no longer
// accepts fails in a second, not after the whole profile.
func preflight(url string) error {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(url, "application/json", bytes.NewReader(eventBody(nil, time.Now().Unix())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s answered %d, want 202: %s", url, resp.StatusCode, shorten(string(body)))
	}
	return nil
}

func writeJSON(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}

func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// connTracker lets the graceful stop (and Ctrl-C) cut requests still in flight.
type connTracker struct {
	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
	dialer net.Dialer
}

type trackedConn struct {
	net.Conn
	owner *connTracker
	once  sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.owner.mu.Lock()
		delete(c.owner.open, c)
		c.owner.mu.Unlock()
	})
	return c.Conn.Close()
}

func (t *connTracker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := t.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		conn.Close()
		return nil, errors.New("load test stopped")
	}
	tracked := &trackedConn{Conn: conn, owner: t}
	t.open[tracked] = struct{}{}
	return tracked, nil
}

func (t *connTracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	open := make([]net.Conn, 0, len(t.open))
	for c := range t.open {
		open = append(open, c)
	}
	t.mu.Unlock()
	for _, c := range open {
		c.(*trackedConn).Conn.Close()
	}
}
