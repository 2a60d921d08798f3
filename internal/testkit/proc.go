package testkit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ProcKiB reads a "<key> <n> kB" line of a /proc file: ProcKiB(pid,
// "status", "VmRSS:") or ProcKiB(pid, "smaps_rollup", "Pss:").
func ProcKiB(pid int, file, key string) (int64, error) {
	path := fmt.Sprintf("/proc/%d/%s", pid, file)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == key && f[2] == "kB" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s line", path, key)
}

// DeployedVersion is the version an app's state.json under the agent's
// state directory names, "" while it has none.
func DeployedVersion(stateDir, app string) string {
	var st struct{ Version string }
	data, err := os.ReadFile(filepath.Join(stateDir, "apps", app, "state.json"))
	if err != nil || json.Unmarshal(data, &st) != nil {
		return ""
	}
	return st.Version
}
