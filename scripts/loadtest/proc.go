package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100.0

type procStat struct {
	ppid int
	cpu  float64 // utime + stime, seconds
}

func readProcs() map[int]procStat {
	out := map[int]procStat{}
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		text := string(raw)
		// The command name may hold spaces and parentheses: fields start after the last ')'.
		head, tail, ok := strings.Cut(text, " (")
		cut := strings.LastIndexByte(tail, ')')
		if !ok || cut < 0 {
			continue
		}
		fields := strings.Fields(tail[cut+1:])
		if len(fields) < 13 {
			continue
		}
		pid, _ := strconv.Atoi(head)
		ppid, _ := strconv.Atoi(fields[1])
		utime, _ := strconv.ParseFloat(fields[11], 64)
		stime, _ := strconv.ParseFloat(fields[12], 64)
		out[pid] = procStat{ppid: ppid, cpu: (utime + stime) / clockTicks}
	}
	return out
}

// treeCPU is the CPU seconds of pid and its live descendants (e.g. every uvicorn worker).
func treeCPU(procs map[int]procStat, root int) float64 {
	children := map[int][]int{}
	for pid, st := range procs {
		children[st.ppid] = append(children[st.ppid], pid)
	}
	var total float64
	stack := []int{root}
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if st, ok := procs[pid]; ok {
			total += st.cpu
			stack = append(stack, children[pid]...)
		}
	}
	return total
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// cpuSnapshot maps "name" (from NAME=PID) to CPU seconds so far, plus the generator itself.
func cpuSnapshot(watch []string) map[string]float64 {
	snap := map[string]float64{"load generator": selfCPU()}
	if len(watch) == 0 {
		return snap
	}
	procs := readProcs()
	for _, item := range watch {
		name, pidText, ok := strings.Cut(item, "=")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil {
			continue
		}
		snap[name] = treeCPU(procs, pid)
	}
	return snap
}

// cpuUsage is the average number of cores each watched tree used between two snapshots.
// A tree whose processes exited in between reads low (their CPU left with them).
func cpuUsage(start, end map[string]float64, wall float64) map[string]float64 {
	out := map[string]float64{}
	if wall <= 0 {
		return out
	}
	for name, cpu := range end {
		out[name] = max(cpu-start[name], 0) / wall
	}
	return out
}

func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	fields := strings.Fields(string(raw))
	if len(fields) < 3 {
		return "?"
	}
	return strings.Join(fields[:3], " ")
}

func vegetaVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/tsenart/vegeta/v12" {
				return dep.Version
			}
		}
	}
	return "?"
}
