package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type produceFlags struct {
	keySep    string
	headers   []string
	partition int32
	file      string
	acks      string
	verbose   bool
}

func newProduce(g *globals) *cobra.Command {
	f := &produceFlags{}
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Write one record per line of input to a topic",
		Long: `Write one record per line of standard input (or --file) to a topic, like
Kafka's console producer. With --key-separator each line is KEY<SEP>VALUE and
records with the same key go to the same partition; without it lines are
values without keys. Empty lines are skipped. Records are sent as lines
arrive; end the input (Ctrl-D) or press Ctrl-C to finish. A summary goes to
standard error at the end.`,
		Example: `  samsa produce MyfirstTopic1
  printf 'alice:1\nbob:2\n' | samsa produce MyfirstTopic1 --key-separator :
  samsa produce MyfirstTopic1 --file events.txt --header source=import -v`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: g.completeTopics,
		RunE:              func(cmd *cobra.Command, a []string) error { return f.run(cmd, g, a[0]) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.keySep, "key-separator", "K", "", "split each line into key and value at the first SEP")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "header added to every record, as key=value (repeatable)")
	fl.Int32VarP(&f.partition, "partition", "p", -1, "write every record to this partition (default: by key, or spread)")
	fl.StringVarP(&f.file, "file", "f", "", "read lines from this file instead of standard input")
	fl.StringVar(&f.acks, "acks", "all", "acknowledgement to wait for: 0 (none), 1 (leader) or all (in-sync replicas)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print each record's partition and offset as it is acknowledged")
	return cmd
}

// ackOpts maps --acks to producer options; below all, idempotent writes
// (which need acks=all) are turned off, as Kafka's producer requires.
func ackOpts(acks string) ([]kgo.Opt, error) {
	switch acks {
	case "all", "-1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}, nil
	case "1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, nil
	case "0":
		return []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}, nil
	}
	return nil, usageError{fmt.Errorf("--acks: %q is not 0, 1 or all", acks)}
}

func (f *produceFlags) run(cmd *cobra.Command, g *globals, topic string) error {
	opts, err := ackOpts(f.acks)
	if err != nil {
		return err
	}
	hdrs, err := f.recordHeaders()
	if err != nil {
		return err
	}
	in := cmd.InOrStdin()
	if f.file != "" {
		file, err := os.Open(f.file)
		if err != nil {
			return err
		}
		defer file.Close()
		in = file
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	opts = append(opts, kgo.DefaultProduceTopic(topic), kgo.RecordDeliveryTimeout(g.timeout))
	if f.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := g.client(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := f.checkTopic(ctx, g, cl, topic); err != nil {
		return err
	}

	p := &producer{cl: cl, out: cmd.OutOrStdout(), verbose: f.verbose, acks0: f.acks == "0"}
	start := time.Now()
	readErr := f.readLines(ctx, in, hdrs, p)
	// Records already handed to the client are delivered even after
	// Ctrl-C: flush with its own deadline rather than the cancelled ctx.
	fctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	if err := cl.Flush(fctx); err != nil && p.firstErr() == nil {
		p.fail(fmt.Errorf("flush: %w", err))
	}
	elapsed := time.Since(start)
	n, size, failed := p.counts()
	fmt.Fprintf(cmd.ErrOrStderr(), "produced %s (%s) to %s in %s", plural(n, "record"), humanBytes(size), topic, elapsed.Round(time.Millisecond))
	if failed > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "; %d failed", failed)
	}
	fmt.Fprintln(cmd.ErrOrStderr())
	if readErr != nil {
		return readErr
	}
	return p.firstErr()
}

func (f *produceFlags) recordHeaders() ([]kgo.RecordHeader, error) {
	var hdrs []kgo.RecordHeader
	for _, kv := range f.headers {
		k, v, ok := bytes.Cut([]byte(kv), []byte("="))
		if !ok || len(k) == 0 {
			return nil, usageError{fmt.Errorf("--header: %q is not key=value", kv)}
		}
		hdrs = append(hdrs, kgo.RecordHeader{Key: string(k), Value: v})
	}
	return hdrs, nil
}

// checkTopic fails early, with near names, when the topic does not exist,
// and checks --partition against its partition count; otherwise the client
// would retry an unknown topic until --timeout.
func (f *produceFlags) checkTopic(ctx context.Context, g *globals, cl *kgo.Client, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	td, err := topicDetail(ctx, kadm.NewClient(cl), topic)
	if err != nil {
		return err
	}
	if f.partition >= 0 && int(f.partition) >= len(td.Partitions) {
		return usageError{fmt.Errorf("--partition: %d does not exist; topic %q has partitions 0 to %d", f.partition, topic, len(td.Partitions)-1)}
	}
	return nil
}

// readLines produces one record per line until the input ends, the
// context is cancelled (Ctrl-C) or a record fails.
func (f *produceFlags) readLines(ctx context.Context, in io.Reader, hdrs []kgo.RecordHeader, p *producer) error {
	lines := make(chan []byte)
	errc := make(chan error, 1)
	// The reader goroutine lets Ctrl-C interrupt a read from a terminal;
	// it exits at the end of the input or when done is closed.
	done := make(chan struct{})
	defer close(done)
	go func() {
		br := bufio.NewReaderSize(in, 64<<10)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				select {
				case lines <- line:
				case <-done:
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				errc <- err
				return
			}
		}
	}()
	lineNo := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case line := <-lines:
			lineNo++
			if p.firstErr() != nil {
				return nil
			}
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			if len(line) == 0 {
				continue
			}
			r := &kgo.Record{Value: line, Headers: hdrs, Partition: f.partition}
			if f.keySep != "" {
				k, v, ok := bytes.Cut(line, []byte(f.keySep))
				if !ok {
					return fmt.Errorf("line %d has no key separator %q: %q", lineNo, f.keySep, line)
				}
				r.Key, r.Value = k, v
			}
			p.produce(ctx, r)
		}
	}
}

// producer counts what was acknowledged and remembers the first failure;
// its promise runs on the client's goroutine, hence the mutex.
type producer struct {
	cl      *kgo.Client
	out     io.Writer
	verbose bool
	acks0   bool

	mu struct {
		sync.Mutex
		acked, bytes, failed int64
		err                  error
	}
}

func (p *producer) produce(ctx context.Context, r *kgo.Record) {
	size := int64(len(r.Key) + len(r.Value))
	// The client's context, not ctx: a record handed over before Ctrl-C
	// is still delivered by the final flush.
	p.cl.Produce(context.WithoutCancel(ctx), r, func(r *kgo.Record, err error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if err != nil {
			p.mu.failed++
			if p.mu.err == nil {
				p.mu.err = fmt.Errorf("produce: %w", err)
			}
			return
		}
		p.mu.acked++
		p.mu.bytes += size
		if p.verbose {
			if p.acks0 {
				fmt.Fprintf(p.out, "partition %d offset unknown (acks=0)\n", r.Partition)
			} else {
				fmt.Fprintf(p.out, "partition %d offset %d\n", r.Partition, r.Offset)
			}
		}
	})
}

func (p *producer) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.err == nil {
		p.mu.err = err
	}
}

func (p *producer) firstErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.err
}

func (p *producer) counts() (acked, bytes, failed int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.acked, p.mu.bytes, p.mu.failed
}

// humanBytes prints a size in B, KiB or MiB.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// plural writes "1 record" or "2 records".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
