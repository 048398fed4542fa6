package transforms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// samsa_stage's YAML fields.
const (
	stageFieldName       = "name"
	stageFieldOnError    = "on_error"
	stageFieldProcessors = "processors"
)

// on_error's values.
const (
	OnErrorDeadLetter = "dead_letter"
	OnErrorDrop       = "drop"
	OnErrorFail       = "fail"
)

// dlqTimeLayout is RFC 3339 with milliseconds, always printed in UTC as Z.
const dlqTimeLayout = "2006-01-02T15:04:05.000Z07:00"

func stageSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Categories("Composition").
		Summary("Runs child processors as a named pipeline stage, and turns the messages they fail into dead letters, drops them, or lets them fail.").
		Description(`
Pipelines run with `+"`error_handling.strict: true`"+`, where a processing error is terminal: the failed message is rejected at the output and never written. A stage catches its children's failures itself, message by message.

Each message runs through the child processors in order, on its own: a child sees a batch of one message (batch-wide processors such as `+"`archive`"+` belong outside a stage), and may turn it into several messages or none. A message that fails a child skips the remaining children. Then every resulting message that carries an error is handled as `+"`on_error`"+` says:

- `+"`dead_letter`"+`: it becomes a dead letter. Its content is replaced by the original record — what the first stage it met received, kept in the metadata `+"`samsa_original`"+` — its error is cleared, and it carries `+"`samsa_dead_letter`"+` (true), `+"`samsa_dlq_reason`"+` (the error text), `+"`samsa_dlq_stage`"+` (this stage's name) and `+"`samsa_dlq_time`"+` (RFC 3339, UTC, milliseconds); `+"`samsa_schema_id`"+` is removed, as the content is no longer what it described. A message yields at most one dead letter per stage, even if a child split it and several parts failed.
- `+"`drop`"+`: it is removed and acknowledged; it is never written anywhere.
- `+"`fail`"+`: it keeps its error. Strict error handling then rejects it at the output, and a Samsa source is told at once (metadata `+"`samsa_ticket`"+`) so that it reads the record again — with what it read after it, none of which is written first. The pipeline makes no progress past that record — as a Kafka consumer stalls on a poison record — until the data or the pipeline changes. Choose it when losing or diverting a record is worse than stopping.

A message that arrives already marked `+"`samsa_dead_letter`"+` passes through untouched, so the first failing stage's reason stands. A message that arrives with an error (only possible without strict error handling) also passes through untouched. A child that panics, or fails the whole batch, fails the message with that error; a cancelled context (shutdown) is returned as is, so the message is retried rather than dead-lettered.`).
		Fields(
			service.NewStringField(stageFieldName).
				Description("The stage's name, recorded in the `samsa_dlq_stage` of its dead letters.").
				Examples("validate", "transform"),
			service.NewStringAnnotatedEnumField(stageFieldOnError, map[string]string{
				OnErrorDeadLetter: "Replace a failed message by a dead letter: the original record with the reason in metadata.",
				OnErrorDrop:       "Remove a failed message, acknowledged and never written.",
				OnErrorFail:       "Leave the error on the message: strict error handling rejects it at the output and the input retries it, so the pipeline stops making progress at that record.",
			}).
				Description("What to do with a message that fails a child processor.").
				Default(OnErrorDeadLetter),
			service.NewProcessorListField(stageFieldProcessors).
				Description("The child processors, run in order on each message."),
		).
		Example("Validation whose failures become dead letters", "Records that are not plays continue as dead letters, for an output to route to the dead-letter topic.", `
pipeline:
  processors:
    - samsa_stage:
        name: validate
        processors:
          - samsa_avro:
              schema_file: schemas/play.avsc
    - samsa_stage:
        name: transform
        processors:
          - mapping: 'root = this; root.minutes = this.ms_played / 60000'
`)
}

// stageProcessor is samsa_stage.
type stageProcessor struct {
	name     string
	onError  string
	children []*service.OwnedProcessor
	log      *slog.Logger
	now      func() time.Time
	failures *service.MetricCounter // labels: stage, action
}

func newStageProcessor(conf *service.ParsedConfig, res *service.Resources, deps Deps) (*stageProcessor, error) {
	name, err := conf.FieldString(stageFieldName)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("%s must not be empty", stageFieldName)
	}
	onError, err := conf.FieldString(stageFieldOnError)
	if err != nil {
		return nil, err
	}
	switch onError {
	case OnErrorDeadLetter, OnErrorDrop, OnErrorFail:
	default:
		return nil, fmt.Errorf("%s: %q is not one of %s, %s, %s", stageFieldOnError, onError, OnErrorDeadLetter, OnErrorDrop, OnErrorFail)
	}
	children, err := conf.FieldProcessorList(stageFieldProcessors)
	if err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &stageProcessor{
		name:     name,
		onError:  onError,
		children: children,
		log:      deps.Logger.With("stage", name),
		now:      time.Now,
		failures: res.Metrics().NewCounter("samsa_stage_failures_total", "stage", "action"),
	}, nil
}

// Process runs one message through the stage.
func (s *stageProcessor) Process(ctx context.Context, msg *service.Message) (service.MessageBatch, error) {
	if isDeadLetter(msg) || msg.GetError() != nil {
		return service.MessageBatch{msg}, nil
	}
	original := keepOriginal(msg)
	out, err := s.run(ctx, msg)
	if err != nil {
		if ctx.Err() != nil {
			rewind(msg, err)
			return nil, err // shutting down: the input retries it, it is no dead letter
		}
		msg.SetError(err)
		out = service.MessageBatch{msg}
	}
	kept := out[:0]
	deadLettered := false
	for _, m := range out {
		err := m.GetError()
		if err == nil {
			kept = append(kept, m)
			continue
		}
		s.failures.Incr(1, s.name, s.onError)
		switch s.onError {
		case OnErrorFail:
			rewind(m, err)
			kept = append(kept, m)
		case OnErrorDeadLetter:
			if deadLettered {
				continue // one dead letter per record: its siblings' would be the same bytes
			}
			deadLettered = true
			s.log.Debug("dead letter", "reason", err)
			s.toDeadLetter(m, original, err)
			kept = append(kept, m)
		}
	}
	return kept, nil
}

// run executes the children in sequence. A message that fails a child
// skips the later ones, whether or not the stream is strict; a panic
// becomes the message's error.
func (s *stageProcessor) run(ctx context.Context, msg *service.Message) (out service.MessageBatch, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("processor panicked", "panic", r, "stack", string(debug.Stack()))
			out, err = nil, fmt.Errorf("processor panicked: %v", r)
		}
	}()
	batches := []service.MessageBatch{{msg}}
	for _, child := range s.children {
		if len(batches) == 1 && !anyFailed(batches[0]) { // the usual case
			if batches, err = child.ProcessBatch(ctx, batches[0]); err != nil {
				return nil, err
			}
			continue
		}
		next := make([]service.MessageBatch, 0, len(batches))
		for _, b := range batches {
			if !anyFailed(b) {
				res, err := child.ProcessBatch(ctx, b)
				if err != nil {
					return nil, err
				}
				next = append(next, res...)
				continue
			}
			for _, m := range b { // keep the order; failed messages skip the child
				if m.GetError() != nil {
					next = append(next, service.MessageBatch{m})
					continue
				}
				res, err := child.ProcessBatch(ctx, service.MessageBatch{m})
				if err != nil {
					return nil, err
				}
				next = append(next, res...)
			}
		}
		batches = next
	}
	if len(batches) == 1 {
		return batches[0], nil
	}
	for _, b := range batches {
		out = append(out, b...)
	}
	return out, nil
}

func anyFailed(b service.MessageBatch) bool {
	for _, m := range b {
		if m.GetError() != nil {
			return true
		}
	}
	return false
}

// toDeadLetter turns m into the dead letter of original.
func (s *stageProcessor) toDeadLetter(m *service.Message, original []byte, reason error) {
	m.SetBytes(original)
	m.SetError(nil)
	m.MetaDelete(MetaSchemaID)
	m.MetaSetMut(MetaDeadLetter, true)
	m.MetaSetMut(MetaDLQReason, reason.Error())
	m.MetaSetMut(MetaDLQStage, s.name)
	m.MetaSetMut(MetaDLQTime, s.now().UTC().Format(dlqTimeLayout))
}

// keepOriginal returns the record as the first stage saw it, storing it in
// samsa_original on the way in. Benthos treats a message's bytes as
// read-only, so the slice is shared, not copied.
func keepOriginal(msg *service.Message) []byte {
	if v, ok := msg.MetaGetImmut(MetaOriginal); ok {
		switch o := v.(type) {
		case []byte:
			return o
		case string:
			return []byte(o)
		}
	}
	b, _ := msg.AsBytes()
	msg.MetaSetMut(MetaOriginal, b)
	return b
}

func isDeadLetter(msg *service.Message) bool {
	v, ok := msg.MetaGetImmut(MetaDeadLetter)
	if !ok {
		return false
	}
	switch d := v.(type) {
	case bool:
		return d
	case string:
		return d == "true"
	}
	return false
}

// Close closes the children, every one even if some fail.
func (s *stageProcessor) Close(ctx context.Context) error {
	var errs []error
	for _, c := range s.children {
		errs = append(errs, c.Close(ctx))
	}
	return errors.Join(errs...)
}

// metaTicket is connectors.MetaTicket: a source record's ticket.
const metaTicket = "samsa_ticket"

// rewind tells the source of a record that fails here that it is not
// stored now, before any record after it can be: the source reads it
// again from its acknowledged position, and nothing it read after the
// record is written ahead of it.
func rewind(m *service.Message, err error) {
	if v, ok := m.MetaGetMut(metaTicket); ok {
		if t, ok := v.(interface{ Fail(error) bool }); ok {
			t.Fail(err)
		}
	}
}
