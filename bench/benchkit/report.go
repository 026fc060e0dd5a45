package benchkit

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Logf writes a timestamped progress line to stderr when verbose (-v).
func Logf(verbose bool, format string, args ...any) {
	if verbose {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
}

// Median of vs (the mean of the middle two when even; 0 when empty).
func Median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MiB formats kib KiB as whole MiB.
func MiB(kib int64) string { return fmt.Sprintf("%d MiB", (kib+512)/1024) }

var statsLine = regexp.MustCompile(`(?m)msg=simulation (.*)$`)

// LastStats is the last stats line the simulation logged into logPath.
func LastStats(logPath string) string {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	m := statsLine.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return ""
	}
	return strings.ReplaceAll(string(m[len(m)-1][1]), "stats.", "")
}
