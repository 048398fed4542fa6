package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/samsa-io/samsa/pipelines"
	"github.com/spf13/cobra"
)

const defaultAdmin = "127.0.0.1:9644"

// pipelinesAPI talks to a node's pipeline API over HTTP.
type pipelinesAPI struct {
	g     *globals
	admin string
}

func newPipelines(g *globals) *cobra.Command {
	api := &pipelinesAPI{g: g}
	cmd := group(&cobra.Command{
		Use:     "pipelines",
		Aliases: []string{"pipeline"},
		Short:   "Check, apply, list, inspect and delete pipelines",
		Long: `Pipelines are YAML files that wire a source through validation and transforms
into a topic, and from the topic out to sinks (see examples/). lint checks
files here, without a server; the other commands use a node's HTTP API
(--admin). An applied pipeline is stored in the cluster, runs on the node it
was applied to, and survives restarts.`,
		Example: `  samsa pipelines lint examples/*/pipeline.yaml
  samsa pipelines apply examples/quickstart/pipeline.yaml
  samsa pipelines status plays`,
	})
	admin := os.Getenv("SAMSA_ADMIN")
	if admin == "" {
		admin = defaultAdmin
	}
	cmd.PersistentFlags().StringVar(&api.admin, "admin", admin, "a node's HTTP address (its --http-addr; env SAMSA_ADMIN)")
	cmd.AddCommand(newPipelinesLint(), api.applyCmd(), api.listCmd(), api.statusCmd(), api.deleteCmd())
	return cmd
}

func newPipelinesLint() *cobra.Command {
	return &cobra.Command{
		Use:   "lint FILE...",
		Short: "Check pipeline files and report every problem",
		Long: `Check pipeline files the way running them would: the format, Benthos's linter
on each Benthos part, and building every component without running it. Every
problem is reported, each as file:line: field: what is wrong. Exits 1 if any
file has a problem. Schemas named by subject are checked when applied.`,
		Example: `  samsa pipelines lint pipeline.yaml
  samsa pipelines lint examples/*/pipeline.yaml`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, files []string) error {
			env, err := pipelines.NewEnvironment(pipelines.Deps{Logger: discardLogger()})
			if err != nil {
				return err
			}
			bad := 0
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err == nil {
					_, err = env.Lint(f, data)
				}
				if err != nil {
					bad++
					fmt.Fprintln(cmd.OutOrStdout(), err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", f)
			}
			if bad > 0 {
				return fmt.Errorf("%d of %d files have problems", bad, len(files))
			}
			return nil
		},
	}
}

func (a *pipelinesAPI) applyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "apply FILE...",
		Short: "Store pipelines in the cluster and run them",
		Long: `Apply pipeline files: each is checked, stored in the cluster and started on the
node at --admin, replacing a running pipeline of the same name (which resumes
from where the old one was). Paths in a file are resolved on that node,
relative to the file's folder. Applying an unchanged file does nothing.`,
		Example: `  samsa pipelines apply examples/quickstart/pipeline.yaml`,
		Args:    args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, files []string) error {
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				dir, err := filepath.Abs(filepath.Dir(f))
				if err != nil {
					return err
				}
				var st pipelines.Status
				req := pipelines.ApplyRequest{File: f, Dir: dir, YAML: string(data)}
				if err := a.call(cmd, http.MethodPost, "/v1/pipelines", req, &st); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "pipeline %s applied (version %d): %s into topic %s\n", st.Name, st.Version, st.State, st.Topic)
			}
			return nil
		},
	}
}

func (a *pipelinesAPI) listCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List pipelines",
		Long: `List the pipelines stored in the cluster with their state, the node running
them, their topic and their counts of records in and out, dead letters and errors.`,
		Example: `  samsa pipelines list
  samsa pipelines ls -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			list := []pipelines.Status{}
			if err := a.call(cmd, http.MethodGet, "/v1/pipelines", nil, &list); err != nil {
				return err
			}
			return a.g.print(cmd.OutOrStdout(), list, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tSTATE\tNODE\tTOPIC\tIN\tOUT\tDEAD LETTERS\tERRORS")
				for _, s := range list {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\n", s.Name, s.State, s.Node, s.Topic, s.In, s.Out, s.Dead, s.Errors)
				}
			})
		},
	}
}

func (a *pipelinesAPI) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME",
		Short: "Show a pipeline's state, counts and sinks' lag",
		Long: `Show a pipeline's state (running, finished, stopped, failed, or elsewhere when
another node runs it), records in and out, dead letters and errors since the
node started it, each stream's state, and how many records each sink has yet
to write (lag).`,
		Example: `  samsa pipelines status plays -o json`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, n []string) error {
			var st pipelines.Status
			if err := a.call(cmd, http.MethodGet, "/v1/pipelines/"+n[0], nil, &st); err != nil {
				return err
			}
			return a.g.print(cmd.OutOrStdout(), st, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "pipeline\t%s (version %d, node %d)\n", st.Name, st.Version, st.Node)
				fmt.Fprintf(tw, "state\t%s\n", st.State)
				if st.Error != "" {
					fmt.Fprintf(tw, "error\t%s\n", st.Error)
				}
				if !st.Started.IsZero() {
					fmt.Fprintf(tw, "started\t%s\n", st.Started.Format(time.RFC3339))
				}
				fmt.Fprintf(tw, "topic\t%s (dead letters: %s.dlq)\n", st.Topic, st.Topic)
				if st.Delivery != "" {
					fmt.Fprintf(tw, "delivery\t%s\n", st.Delivery)
				}
				fmt.Fprintf(tw, "records\t%d in, %d out, %d dead letters, %d errors\n", st.In, st.Out, st.Dead, st.Errors)
				for _, s := range st.Streams {
					line := s.State
					if s.Error != "" {
						line += ": " + s.Error
					}
					fmt.Fprintf(tw, "stream %s\t%s\n", s.Name, line)
				}
				for _, s := range st.Sinks {
					lag := fmt.Sprint(s.Lag)
					if s.Lag < 0 {
						lag = "unknown (another node leads the topic)"
					}
					fmt.Fprintf(tw, "sink %s\tlag %s (group %s)\n", s.Name, lag, s.Group)
				}
			})
		},
	}
}

func (a *pipelinesAPI) deleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME...",
		Short: "Stop pipelines and remove them from the cluster",
		Long: `Stop pipelines and remove their specs. Their topics, the source's checkpoint
and the sinks' committed offsets stay, so applying one again resumes it.`,
		Example: `  samsa pipelines delete plays`,
		Args:    args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, names []string) error {
			for _, n := range names {
				if err := a.call(cmd, http.MethodDelete, "/v1/pipelines/"+n, nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "pipeline %s deleted\n", n)
			}
			return nil
		},
	}
}

// call does one API request; an error answer becomes an error with the
// server's message (every problem, for a pipeline file with mistakes).
func (a *pipelinesAPI) call(cmd *cobra.Command, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), a.g.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+a.admin+path, rd)
	if err != nil {
		return usageError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("no answer from %s within %s", a.admin, a.g.timeout)
		}
		return fmt.Errorf("no Samsa node answered at %s (%v); start one with `samsa serve`, or point --admin (or SAMSA_ADMIN) at a node's --http-addr", a.admin, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e pipelines.ErrorResponse
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		return json.Unmarshal(b, out)
	}
	return nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
