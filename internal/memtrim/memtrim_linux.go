package memtrim

import (
	"bufio"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Trim returns the heap's free pages to the kernel and pages out the
// executable's read-only mappings. A kernel without MADV_PAGEOUT (before
// Linux 5.4) refuses the advice; the heap is still trimmed.
func Trim() (Result, error) {
	var r Result
	r.Before, _ = RSS()
	debug.FreeOSMemory()
	regions, err := exeRegions()
	if err != nil {
		return r, err
	}
	for _, reg := range regions {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, reg[0], reg[1]-reg[0], unix.MADV_PAGEOUT); errno != 0 {
			err = fmt.Errorf("madvise(MADV_PAGEOUT): %w", errno)
			break
		}
		r.Regions++
	}
	r.After, _ = RSS()
	return r, err
}

// exeRegions lists the start and end of the executable's read-only mappings
// (code and constant data; never the writable data and bss).
func exeRegions() ([][2]uintptr, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var regions [][2]uintptr
	s := bufio.NewScanner(f)
	for s.Scan() {
		// 00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/dewy-agent
		fields := strings.Fields(s.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || b <= a {
			return nil, fmt.Errorf("/proc/self/maps: bad line %q", s.Text())
		}
		regions = append(regions, [2]uintptr{uintptr(a), uintptr(b)})
	}
	return regions, s.Err()
}

// RSS is the process's resident memory (VmRSS) in bytes.
func RSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}
