package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clusterProcesses are the local cluster's control plane and kwok, whose
// CPU time the bench reports over the slots' window.
var clusterProcesses = []string{"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok"}

// clockTick is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTick = 100

// cpuSample is the CPU time of every cluster process on this machine, by
// name, and the machine's idle time, read from /proc (empty elsewhere).
type cpuSample struct {
	procs map[string]time.Duration
	idle  time.Duration
}

func sampleCPU() cpuSample {
	s := cpuSample{procs: map[string]time.Duration{}}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		cmd, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || len(cmd) == 0 {
			continue
		}
		name := filepath.Base(strings.SplitN(string(cmd), "\x00", 2)[0])
		if !slices.Contains(clusterProcesses, name) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis: utime and
		// stime are the 12th and 13th.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		s.procs[name] += ticks(u + k)
	}
	if stat, err := os.ReadFile("/proc/stat"); err == nil {
		f := strings.Fields(strings.SplitN(string(stat), "\n", 2)[0])
		if len(f) > 5 && f[0] == "cpu" {
			idle, _ := strconv.ParseInt(f[4], 10, 64)
			iowait, _ := strconv.ParseInt(f[5], 10, 64)
			s.idle = ticks(idle + iowait)
		}
	}
	return s
}

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / clockTick }

// printCPU prints what the cluster's processes and the machine's idle
// cores spent between two samples.
func printCPU(a, b cpuSample) {
	if len(b.procs) == 0 {
		return
	}
	var parts []string
	var sum time.Duration
	for _, name := range clusterProcesses {
		d := b.procs[name] - a.procs[name]
		sum += d
		parts = append(parts, fmt.Sprintf("%s %.2fs", name, d.Seconds()))
	}
	fmt.Printf("  the cluster's processes' CPU time meanwhile: %.2fs (%s); the machine idle %.2fs\n", sum.Seconds(), strings.Join(parts, ", "), (b.idle - a.idle).Seconds())
}
