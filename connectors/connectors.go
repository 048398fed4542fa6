package connectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/replog"
)

// Metadata keys of the contract between the sources, the transforms and the
// topic output (see the package doc).
const (
	MetaSource    = "samsa_source"
	MetaPosition  = "samsa_position"
	MetaTimestamp = "samsa_timestamp"
	// MetaKey is the record key a source derives, where it has one: the
	// device of an MQTT message, the primary key of a changed row (as a
	// JSON object). Pipelines key their topic with it by default.
	MetaKey        = "samsa_key"
	MetaDeadLetter = "samsa_dead_letter"
	MetaOriginal   = "samsa_original"
	MetaDLQReason  = "samsa_dlq_reason"
	MetaDLQStage   = "samsa_dlq_stage"
	MetaDLQTime    = "samsa_dlq_time"
)

// Record headers the topic output writes on dead letters.
const (
	HeaderErrorReason = "samsa.error.reason"
	HeaderErrorStage  = "samsa.error.stage"
	HeaderErrorTime   = "samsa.error.time"
)

// Component names.
const (
	FileInputName   = "samsa_file"
	TopicInputName  = "samsa_topic"
	TopicOutputName = "samsa_topic"

	PostgresCDCInputName = "samsa_postgres_cdc"
)

// Deps are what the connectors need from the node.
type Deps struct {
	Log *replog.Log
	// Logger receives the connectors' lifecycle events; default: discarded.
	Logger *slog.Logger
}

// ErrNoLog is what a connector that reads or writes the log answers when
// it was built without one (to lint a pipeline offline) and is asked to
// connect.
var ErrNoLog = errors.New("connectors: built without a log, for linting only: cannot connect")

// lintInput and lintOutput are connectors built without a log: complete,
// so their configuration is checked, but they refuse to connect.
type lintInput struct{ service.BatchInput }

func (lintInput) Connect(context.Context) error { return ErrNoLog }

type lintOutput struct{ service.BatchOutput }

func (lintOutput) Connect(context.Context) error { return ErrNoLog }

// needsLog wraps the constructor's result of an input that uses the log
// when there is none.
func needsLog(deps Deps) func(service.BatchInput, error) (service.BatchInput, error) {
	return func(in service.BatchInput, err error) (service.BatchInput, error) {
		if err != nil {
			return nil, err
		}
		if deps.Log == nil {
			return lintInput{in}, nil
		}
		return in, nil
	}
}

// Register adds the connectors to env (never to Benthos's global
// environment). Without deps.Log the connectors that use the log can be
// built, to lint pipelines, but not connected (ErrNoLog).
func Register(env *service.Environment, deps Deps) error {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := env.RegisterBatchInput(FileInputName, fileInputSpec(), func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchInput, error) {
		// Not AutoRetryNacksBatched: a nacked batch is read again by the
		// input itself, from its acknowledged position (see MetaTicket).
		return needsLog(deps)(newFileInput(conf, deps))
	}); err != nil {
		return fmt.Errorf("connectors: %s input: %w", FileInputName, err)
	}
	if err := env.RegisterBatchInput(TopicInputName, topicInputSpec(), func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchInput, error) {
		in, err := newTopicInput(conf, deps)
		if err != nil {
			return nil, err
		}
		return needsLog(deps)(service.AutoRetryNacksBatched(in), nil)
	}); err != nil {
		return fmt.Errorf("connectors: %s input: %w", TopicInputName, err)
	}
	if err := env.RegisterBatchOutput(FileOutputName, fileOutputSpec(), func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
		out, err := newFileOutput(conf, deps)
		if err != nil {
			return nil, service.BatchPolicy{}, 0, err
		}
		return out, service.BatchPolicy{}, 1, nil // one write at a time: lines stay in order
	}); err != nil {
		return fmt.Errorf("connectors: %s output: %w", FileOutputName, err)
	}
	if err := env.RegisterBatchOutput(TopicOutputName, topicOutputSpec(), func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
		out, policy, err := newTopicOutput(conf, deps)
		if err != nil {
			return nil, policy, 0, err
		}
		if deps.Log == nil {
			return lintOutput{out}, policy, 1, nil
		}
		return out, policy, 1, nil // one write at a time: positions reach a partition in order
	}); err != nil {
		return fmt.Errorf("connectors: %s output: %w", TopicOutputName, err)
	}
	if err := env.RegisterBatchInput(SQLInputName, sqlInputSpec(), func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchInput, error) {
		// Not AutoRetryNacksBatched: a nacked batch is read again by the
		// input itself, from its acknowledged position (see MetaTicket).
		return needsLog(deps)(newSQLInput(conf, deps))
	}); err != nil {
		return fmt.Errorf("connectors: %s input: %w", SQLInputName, err)
	}
	if err := env.RegisterBatchOutput(SQLOutputName, sqlOutputSpec(), func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
		return newSQLOutput(conf, deps)
	}); err != nil {
		return fmt.Errorf("connectors: %s output: %w", SQLOutputName, err)
	}
	if err := env.RegisterBatchInput(MQTTInputName, mqttInputSpec(), func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchInput, error) {
		// Not AutoRetryNacksBatched: the input keeps a failed batch's
		// messages and sends them again itself (see MetaTicket).
		return needsLog(deps)(newMQTTInput(conf, deps))
	}); err != nil {
		return fmt.Errorf("connectors: %s input: %w", MQTTInputName, err)
	}
	if err := env.RegisterBatchOutput(MQTTOutputName, mqttOutputSpec(), func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
		out, policy, err := newMQTTOutput(conf, deps)
		if err != nil {
			return nil, policy, 0, err
		}
		return out, policy, 1, nil // one batch at a time: each topic gets its messages in order
	}); err != nil {
		return fmt.Errorf("connectors: %s output: %w", MQTTOutputName, err)
	}
	if err := env.RegisterBatchInput(PostgresCDCInputName, postgresCDCInputSpec(), func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchInput, error) {
		// Not AutoRetryNacksBatched: after a failed batch the input streams
		// again from its acknowledged position (see MetaTicket).
		return needsLog(deps)(newPostgresCDCInput(conf, deps))
	}); err != nil {
		return fmt.Errorf("connectors: %s input: %w", PostgresCDCInputName, err)
	}
	return nil
}
