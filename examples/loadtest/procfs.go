package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// parseStatCPU returns utime+stime in seconds from the text of
// /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStatCPU(stat []byte) (float64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("proc stat: no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After ')': state(3) ppid(4) ... utime(14) stime(15): indexes 11, 12.
	if len(f) < 13 {
		return 0, errors.New("proc stat: too few fields")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("proc stat: bad utime/stime")
	}
	return float64(u+s) / clockTicks, nil
}

// procCPU returns the CPU time (user+system, seconds) process pid used.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseKB returns the value in bytes of a "Key:   123 kB" line of
// /proc/PID/status or /proc/PID/smaps_rollup.
func parseKB(text []byte, key string) (int64, error) {
	for _, line := range strings.Split(string(text), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc %s: %w", key, err)
		}
		if len(f) > 1 && f[1] != "kB" {
			return 0, fmt.Errorf("proc %s: unit %q", key, f[1])
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("proc: no %s", key)
}

// procRSS returns the resident set size (VmRSS) of process pid in bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseKB(b, "VmRSS")
}

// procPSS returns the proportional set size of process pid in bytes
// (shared pages divided among the processes sharing them: the honest
// memory figure for many ffmpeg processes that share one binary).
func procPSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	return parseKB(b, "Pss")
}

// procThreads returns a process's thread count (/proc/PID/status).
func procThreads(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("no Threads line")
}

// procFDs returns how many file descriptors process pid has open.
func procFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}

// parseUDPStat returns field of the "Udp:" lines of /proc/net/snmp (a
// header line of names, then one of values), such as "RcvbufErrors".
func parseUDPStat(snmp []byte, field string) (uint64, error) {
	var names []string
	for _, line := range strings.Split(string(snmp), "\n") {
		rest, ok := strings.CutPrefix(line, "Udp:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if names == nil {
			names = f
			continue
		}
		i := slices.Index(names, field)
		if i < 0 || i >= len(f) || len(f) != len(names) {
			return 0, fmt.Errorf("proc snmp: no Udp %s", field)
		}
		return strconv.ParseUint(f[i], 10, 64)
	}
	return 0, fmt.Errorf("proc snmp: no Udp %s", field)
}

// udpRcvbufErrors returns the machine's count of UDP datagrams dropped
// for a full socket receive buffer (all sockets, all processes).
func udpRcvbufErrors() (uint64, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	return parseUDPStat(b, "RcvbufErrors")
}
