package transforms

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/samsa-io/samsa/log/meta"
)

// Component names, as pipeline YAML spells them.
const (
	ProcessorAvro  = "samsa_avro"
	ProcessorStage = "samsa_stage"
)

// Metadata keys; see the package documentation for their types.
const (
	MetaOriginal   = "samsa_original"
	MetaDeadLetter = "samsa_dead_letter"
	MetaDLQReason  = "samsa_dlq_reason"
	MetaDLQStage   = "samsa_dlq_stage"
	MetaDLQTime    = "samsa_dlq_time"
	MetaSchemaID   = "samsa_schema_id"
)

// SchemaStore is where subjects' schemas come from (implemented by
// *replog.Log).
type SchemaStore interface {
	// Schema returns a subject's version; meta.LatestVersion (-1) asks for
	// the newest.
	Schema(subject string, version int) (meta.SchemaVersion, error)
}

// Deps is what the processors need from the node running them.
type Deps struct {
	// Schemas answers samsa_avro's subject field. May be nil: then a
	// samsa_avro with a subject is refused at construction.
	Schemas SchemaStore
	// Logger receives debug events (dead letters) and panics caught in
	// stages. Default: discard.
	Logger *slog.Logger
}

// Register adds samsa_avro and samsa_stage to env, never to Benthos's
// global environment.
func Register(env *service.Environment, deps Deps) error {
	if env == nil {
		return errors.New("transforms: nil environment")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	err := env.RegisterProcessor(ProcessorAvro, avroSpec(),
		func(conf *service.ParsedConfig, res *service.Resources) (service.Processor, error) {
			return newAvroProcessor(conf, res, deps)
		})
	if err != nil {
		return fmt.Errorf("transforms: register %s: %w", ProcessorAvro, err)
	}
	err = env.RegisterProcessor(ProcessorStage, stageSpec(),
		func(conf *service.ParsedConfig, res *service.Resources) (service.Processor, error) {
			return newStageProcessor(conf, res, deps)
		})
	if err != nil {
		return fmt.Errorf("transforms: register %s: %w", ProcessorStage, err)
	}
	return nil
}
