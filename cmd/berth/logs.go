package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/agent/agentconfig"
	"github.com/berth-dev/berth/internal/agent/taskrunner"
	"github.com/berth-dev/berth/internal/config"
)

// newLogsCmd prints the stdout and stderr a task's containers wrote, from
// the agent's data dir on this machine (they stay there after the task is
// cleaned up; shipping them elsewhere is awslogs' job).
func newLogsCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "logs TASK [CONTAINER]",
		Short: "Print the output of a task's containers that ran on this machine",
		Long: `Print what a task's containers wrote to stdout and stderr. TASK is a task ARN or id;
without CONTAINER every container's log is printed, each under a header. Run it on the machine
whose agent ran the task.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataDir == "" {
				dataDir = defaultAgentDataDir()
			}
			dir := taskrunner.LogDir(dataDir, args[0])
			if len(args) == 2 {
				return copyFile(cmd.OutOrStdout(), taskrunner.LogPath(dataDir, args[0], args[1]), args[0])
			}
			entries, err := os.ReadDir(dir)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("no logs of task %s under %s (did it run on this machine? pass --agent-data-dir)", args[0], dataDir)
			}
			if err != nil {
				return err
			}
			names := []string{}
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".log") {
					names = append(names, e.Name())
				}
			}
			sort.Strings(names)
			for _, n := range names {
				if len(names) > 1 {
					fmt.Fprintf(cmd.OutOrStdout(), "==> %s <==\n", strings.TrimSuffix(n, ".log"))
				}
				if err := copyFile(cmd.OutOrStdout(), filepath.Join(dir, n), args[0]); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "agent-data-dir", "", "the agent's data dir (default: ECS_DATADIR, else berth up's DATA/agent, else the agent's default)")
	return cmd
}

// defaultAgentDataDir is where an agent on this machine most likely keeps
// its data: ECS_DATADIR, else `berth up`'s, else `berth agent`'s default.
func defaultAgentDataDir() string {
	if d := os.Getenv("ECS_DATADIR"); d != "" {
		return d
	}
	up := filepath.Join(config.Defaults().DataDir, "agent")
	if _, err := os.Stat(up); err == nil {
		return up
	}
	return agentconfig.DefaultDataDir()
}

func copyFile(w io.Writer, path, task string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no log at %s for task %s", path, task)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
