package pipelines

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/connectors"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/samsa-io/samsa/transforms"

	// Benthos's core components — file, stdout, http_client, socket,
	// mapping, switch, branch, dedupe, ... — for sources, transforms and
	// sinks.
	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

// Deps is what pipelines need from the node that runs them.
type Deps struct {
	// Log is the node's replicated log: topics, checkpoints, schemas and
	// pipeline specs. Nil only for linting without a node.
	Log *replog.Log
	// Registerer receives the pipelines' metrics. Default: none kept.
	Registerer prometheus.Registerer
	// Logger receives the pipelines' logs. Default slog.Default().
	Logger *slog.Logger
}

// Environment is the Benthos environment pipelines are checked and run
// in: Benthos's core components, Samsa's connectors and transforms, and
// the metrics bridge, all registered on a clone of Benthos's global
// environment (nothing of ours is global), with Bloblang limited to pure
// functions and no imports.
type Environment struct {
	*service.Environment
	deps    Deps
	metrics *Metrics
}

// NewEnvironment builds the environment for deps.
func NewEnvironment(deps Deps) (*Environment, error) {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	e := &Environment{Environment: service.NewEnvironment(), deps: deps}
	e.UseBloblangEnvironment(bloblangEnv())
	e.metrics = NewMetrics(deps.Registerer, deps.Logger)
	if err := e.metrics.register(e.Environment); err != nil {
		return nil, fmt.Errorf("pipelines: %w", err)
	}
	var schemas transforms.SchemaStore
	if deps.Log != nil {
		schemas = deps.Log
	}
	if err := transforms.Register(e.Environment, transforms.Deps{Schemas: schemas, Logger: deps.Logger}); err != nil {
		return nil, fmt.Errorf("pipelines: %w", err)
	}
	// Offline (lint, no log) the connectors are built but cannot connect.
	if err := connectors.Register(e.Environment, connectors.Deps{Log: deps.Log, Logger: deps.Logger}); err != nil {
		return nil, fmt.Errorf("pipelines: %w", err)
	}
	return e, nil
}
