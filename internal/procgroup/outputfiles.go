package procgroup

import "os"

// offsetSuffix names the file that keeps an output file's read offset.
const offsetSuffix = ".offset"

// OutputSource says where an adopted process's output is read from: the
// files of StartSurviving with a directory (Process.OutputFiles; "" for none),
// or else the child's copies of its pipes' read ends (Process.PipeFds; below 3
// for none).
type OutputSource struct {
	Files [2]string
	Fds   [2]int
}

// removeOutputFiles removes output files and their offset files.
func removeOutputFiles(paths []string) {
	for _, p := range paths {
		if p == "" {
			continue
		}
		os.Remove(p)
		os.Remove(p + offsetSuffix)
	}
}

// RemoveOutputFiles removes the output files of a process that will not be
// adopted (see StartSurviving) and their offset files.
func RemoveOutputFiles(stdout, stderr string) { removeOutputFiles([]string{stdout, stderr}) }
