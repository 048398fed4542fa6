package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newBench(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "bench",
		Short: "Measure produce and consume throughput and latency",
		Long: `Measure a cluster like Kafka's kafka-producer-perf-test and
kafka-consumer-perf-test: records per second, MB per second (1 MB = 2^20
bytes, as those tools count) and, for produce, the latency of each record from
the produce call to its acknowledgement (p50, p95, p99, p99.9). -o json prints
the result for scripts.`,
		Example: `  samsa bench produce --topic bench --records 1000000 --record-size 100 --acks all
  samsa bench consume --topic bench --records 1000000`,
	})
	cmd.AddCommand(newBenchProduce(g), newBenchConsume(g))
	return cmd
}

// benchResult is what both benchmarks report; the JSON names are read by
// scripts, keep them.
type benchResult struct {
	Records       int64   `json:"records" yaml:"records"`
	Bytes         int64   `json:"bytes" yaml:"bytes"`
	Seconds       float64 `json:"seconds" yaml:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec" yaml:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec" yaml:"mb_per_sec"`
}

type produceResult struct {
	benchResult `yaml:",inline"`
	P50Ms       float64 `json:"p50_ms" yaml:"p50_ms"`
	P95Ms       float64 `json:"p95_ms" yaml:"p95_ms"`
	P99Ms       float64 `json:"p99_ms" yaml:"p99_ms"`
	P999Ms      float64 `json:"p999_ms" yaml:"p999_ms"`
	MaxMs       float64 `json:"max_ms" yaml:"max_ms"`
	AvgMs       float64 `json:"avg_ms" yaml:"avg_ms"`
}

func newBenchResult(records, bytes int64, elapsed time.Duration) benchResult {
	s := elapsed.Seconds()
	r := benchResult{Records: records, Bytes: bytes, Seconds: s}
	if s > 0 {
		r.RecordsPerSec = float64(records) / s
		r.MBPerSec = float64(bytes) / (1 << 20) / s
	}
	return r
}

type benchFlags struct {
	topic         string
	records       int64
	recordSize    int
	acks          string
	partitions    int32
	producers     int
	linger        time.Duration
	batchMaxBytes int32
	compression   string
	rate          float64
	progress      bool
}

func (f *benchFlags) common(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.topic, "topic", "t", "samsa-bench", "topic to write or read")
	fl.Int64VarP(&f.records, "records", "n", 1_000_000, "how many records")
	fl.BoolVar(&f.progress, "progress", false, "show the progress bar even when standard error is not a terminal")
}

func newBenchProduce(g *globals) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Write records as fast as possible (or at --rate) and measure",
		Long: `Write --records records of --record-size random bytes to --topic, created
with --partitions if missing, from --producers concurrent clients, then print
records/s, MB/s and the latency of each record from the produce call to its
acknowledgement. --rate caps the records per second of all producers together,
to measure latency under a moderate load rather than at saturation.`,
		Example: `  samsa bench produce --topic bench --records 1000000 --record-size 100 --acks all
  samsa bench produce --topic bench --records 100000 --rate 10000 -o json
  samsa bench produce --topic bench --producers 4 --compression lz4 --linger 5ms`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return f.runProduce(cmd, g) },
	}
	f.common(cmd)
	fl := cmd.Flags()
	fl.IntVarP(&f.recordSize, "record-size", "s", 100, "bytes in each record's value")
	fl.StringVar(&f.acks, "acks", "all", "acknowledgement to wait for: 0, 1 or all")
	fl.Int32VarP(&f.partitions, "partitions", "p", 1, "partitions of the topic if it has to be created")
	fl.IntVar(&f.producers, "producers", 1, "concurrent producer clients")
	fl.DurationVar(&f.linger, "linger", 0, "how long a producer waits to fill a batch (default: the client's, 10ms)")
	fl.Int32Var(&f.batchMaxBytes, "batch-max-bytes", 0, "largest batch a producer sends (default: the client's, about 1 MB)")
	fl.StringVar(&f.compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fl.Float64Var(&f.rate, "rate", 0, "records per second of all producers together (0: as fast as possible)")
	return cmd
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, usageError{fmt.Errorf("--compression: %q is not none, gzip, snappy, lz4 or zstd", name)}
}

// producerOpts checks the produce flags and turns them into client options.
func (f *benchFlags) producerOpts(cmd *cobra.Command) ([]kgo.Opt, error) {
	switch {
	case f.records < 1:
		return nil, usageError{fmt.Errorf("--records: %d must be at least 1", f.records)}
	case f.recordSize < 0:
		return nil, usageError{fmt.Errorf("--record-size: %d must be 0 or more", f.recordSize)}
	case f.producers < 1:
		return nil, usageError{fmt.Errorf("--producers: %d must be at least 1", f.producers)}
	case f.partitions < 1:
		return nil, usageError{fmt.Errorf("--partitions: %d must be at least 1", f.partitions)}
	case f.rate < 0:
		return nil, usageError{fmt.Errorf("--rate: %g must be 0 (unlimited) or more", f.rate)}
	case f.linger < 0:
		return nil, usageError{fmt.Errorf("--linger: %s must be 0 or more", f.linger)}
	}
	opts, err := ackOpts(f.acks)
	if err != nil {
		return nil, err
	}
	codec, err := compressionCodec(f.compression)
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.DefaultProduceTopic(f.topic), kgo.ProducerBatchCompression(codec))
	if cmd.Flags().Changed("linger") {
		opts = append(opts, kgo.ProducerLinger(f.linger))
	}
	if cmd.Flags().Changed("batch-max-bytes") {
		if f.batchMaxBytes < 1 {
			return nil, usageError{fmt.Errorf("--batch-max-bytes: %d must be at least 1", f.batchMaxBytes)}
		}
		opts = append(opts, kgo.ProducerBatchMaxBytes(f.batchMaxBytes))
	}
	return opts, nil
}

// ensureTopic creates the benchmark's topic if it is missing.
func (f *benchFlags) ensureTopic(ctx context.Context, g *globals, errw io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	adm, err := g.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	tds, err := adm.ListTopics(ctx, f.topic)
	if err != nil {
		return err
	}
	if tds.Has(f.topic) {
		return nil
	}
	r, err := adm.CreateTopic(ctx, f.partitions, -1, nil, f.topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %q: %w", f.topic, brokerError(err, r.ErrMessage))
	}
	fmt.Fprintf(errw, "created topic %s with %d partition(s)\n", f.topic, f.partitions)
	return nil
}

func (f *benchFlags) runProduce(cmd *cobra.Command, g *globals) error {
	opts, err := f.producerOpts(cmd)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := f.ensureTopic(ctx, g, cmd.ErrOrStderr()); err != nil {
		return err
	}
	clients := make([]*kgo.Client, f.producers)
	for i := range clients {
		if clients[i], err = g.client(ctx, opts...); err != nil {
			return err
		}
		defer clients[i].Close()
	}
	payload := randomPayload(f.recordSize)
	b := &benchProducer{payload: payload}
	bar := startProgress(cmd.ErrOrStderr(), f.progress, f.records, "producing", b.acked.Load)

	start := time.Now()
	var wg sync.WaitGroup
	hists := make([]*hdrhistogram.Histogram, len(clients))
	for i, cl := range clients {
		n := f.records / int64(len(clients))
		if int64(i) < f.records%int64(len(clients)) {
			n++
		}
		hists[i] = newLatencyHistogram()
		wg.Go(func() { b.run(ctx, cl, n, f.rate/float64(len(clients)), hists[i]) })
	}
	wg.Wait()
	// Records handed over before a Ctrl-C are still waited for, with
	// their own deadline.
	fctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	for _, cl := range clients {
		if err := cl.Flush(fctx); err != nil {
			b.fail(fmt.Errorf("flush: %w", err))
		}
	}
	elapsed := time.Since(start)
	bar.stop()

	h := newLatencyHistogram()
	for _, x := range hists {
		h.Merge(x)
	}
	acked := b.acked.Load()
	res := produceResult{
		benchResult: newBenchResult(acked, acked*int64(f.recordSize), elapsed),
		P50Ms:       quantileMs(h, 50), P95Ms: quantileMs(h, 95), P99Ms: quantileMs(h, 99), P999Ms: quantileMs(h, 99.9),
		MaxMs: float64(h.Max()) / 1000, AvgMs: h.Mean() / 1000,
	}
	if err := g.print(cmd.OutOrStdout(), res, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "%d records sent in %.2f s: %.1f records/s, %.2f MB/s\n", res.Records, res.Seconds, res.RecordsPerSec, res.MBPerSec)
		fmt.Fprintf(tw, "latency: avg %.2f ms, p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
			res.AvgMs, res.P50Ms, res.P95Ms, res.P99Ms, res.P999Ms, res.MaxMs)
	}); err != nil {
		return err
	}
	return b.firstErr()
}

// benchProducer is the state the producer goroutines share.
type benchProducer struct {
	payload []byte
	acked   atomic.Int64
	mu      struct {
		sync.Mutex
		err error
	}
}

// run produces n records on cl, paced to rate records/s when rate > 0,
// recording each one's latency in h.
func (b *benchProducer) run(ctx context.Context, cl *kgo.Client, n int64, rate float64, h *hdrhistogram.Histogram) {
	var hmu sync.Mutex // promises run on the client's goroutine
	start := time.Now()
	for i := int64(0); i < n; i++ {
		if ctx.Err() != nil || b.firstErr() != nil {
			return
		}
		if rate > 0 {
			// Sleep only when a millisecond or more ahead: timers are
			// too coarse to space records microseconds apart.
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d >= time.Millisecond {
				time.Sleep(d)
			}
		}
		sent := time.Now()
		cl.Produce(context.WithoutCancel(ctx), &kgo.Record{Value: b.payload}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.fail(err)
				return
			}
			us := time.Since(sent).Microseconds()
			hmu.Lock()
			h.RecordValue(min(max(us, 1), maxLatencyUs))
			hmu.Unlock()
			b.acked.Add(1)
		})
	}
}

func (b *benchProducer) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mu.err == nil {
		b.mu.err = fmt.Errorf("produce: %w", err)
	}
}

func (b *benchProducer) firstErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.err
}

const maxLatencyUs = int64(time.Hour / time.Microsecond)

// newLatencyHistogram holds microseconds from 1 µs to an hour with three
// significant digits.
func newLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, maxLatencyUs, 3)
}

func quantileMs(h *hdrhistogram.Histogram, q float64) float64 {
	return float64(h.ValueAtQuantile(q)) / 1000
}

// randomPayload is letters, as Kafka's perf test sends: random enough that
// compression does not make the numbers meaningless.
func randomPayload(n int) []byte {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return b
}

func newBenchConsume(g *globals) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Read records from the start of a topic as fast as possible and measure",
		Long: `Read --records records from the start of every partition of --topic (no
consumer group, nothing committed) and print the elapsed time, records/s and
MB/s. The topic must hold at least that many records: write them first with
'samsa bench produce'.`,
		Example: `  samsa bench produce --topic bench --records 1000000
  samsa bench consume --topic bench --records 1000000 -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return f.runConsume(cmd, g) },
	}
	f.common(cmd)
	return cmd
}

func (f *benchFlags) runConsume(cmd *cobra.Command, g *globals) error {
	if f.records < 1 {
		return usageError{fmt.Errorf("--records: %d must be at least 1", f.records)}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := f.checkAvailable(ctx, g); err != nil {
		return err
	}
	cl, err := g.client(ctx, kgo.ConsumeTopics(f.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	var read, bytes atomic.Int64
	bar := startProgress(cmd.ErrOrStderr(), f.progress, f.records, "consuming", read.Load)
	start := time.Now()
	for read.Load() < f.records {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		if err := fetches.Err0(); err != nil {
			bar.stop()
			return fmt.Errorf("fetch: %w", err)
		}
		for r := range fetches.RecordsAll() {
			if read.Load() == f.records {
				break
			}
			bytes.Add(int64(len(r.Key) + len(r.Value)))
			read.Add(1)
		}
	}
	elapsed := time.Since(start)
	bar.stop()
	res := newBenchResult(read.Load(), bytes.Load(), elapsed)
	return g.print(cmd.OutOrStdout(), res, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "%d records (%s) read in %.2f s: %.1f records/s, %.2f MB/s\n", res.Records, humanBytes(res.Bytes), res.Seconds, res.RecordsPerSec, res.MBPerSec)
	})
}

// checkAvailable refuses to wait for records that are not there.
func (f *benchFlags) checkAvailable(ctx context.Context, g *globals) error {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	adm, err := g.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	if _, err := topicDetail(ctx, adm, f.topic); err != nil {
		return err
	}
	starts, err := adm.ListStartOffsets(ctx, f.topic)
	if err != nil {
		return err
	}
	ends, err := adm.ListEndOffsets(ctx, f.topic)
	if err != nil {
		return err
	}
	var have int64
	ends.Each(func(e kadm.ListedOffset) {
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok && e.Err == nil && s.Err == nil {
			have += e.Offset - s.Offset
		}
	})
	if have < f.records {
		return fmt.Errorf("topic %q holds %d records, fewer than --records %d; write them first with `samsa bench produce --topic %s --records %d`", f.topic, have, f.records, f.topic, f.records)
	}
	return nil
}

// progress draws a progress bar from a counter, redrawn by its own
// goroutine: the counter is bumped per record, far too often to redraw.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
}

// startProgress shows a bar on w when w is a terminal or when forced;
// otherwise it does nothing.
func startProgress(w io.Writer, force bool, total int64, what string, count func() int64) *progress {
	p := &progress{done: make(chan struct{})}
	if !force && !isTerminal(w) {
		return p
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("records"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	bar.StartWithoutRender() // the rate counts from now, not from the first update
	p.wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				bar.Set64(count())
				bar.Finish()
				return
			case <-t.C:
				bar.Set64(count())
			}
		}
	})
	return p
}

// stop draws the bar a last time and clears it; it is safe to call twice.
func (p *progress) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	p.wg.Wait()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
