package replog

import (
	"context"
	"fmt"

	"github.com/samsa-io/samsa/log/meta"
)

// Pipeline specs, connector checkpoints and schemas live in the meta shard:
// replicated, and there after a restart.

// PutCheckpoint stores a connector's checkpoint under key (an empty value
// deletes it). A source writes the position below which every record it
// read is stored, and resumes from it after a restart.
func (l *Log) PutCheckpoint(ctx context.Context, key string, value []byte) error {
	return l.proposeMeta(ctx, meta.PutCheckpoint{Key: key, Value: value})
}

// Checkpoint returns a connector's checkpoint.
func (l *Log) Checkpoint(key string) ([]byte, bool) {
	var v []byte
	var ok bool
	l.meta.Read(func(s *meta.State) { v, ok = s.Checkpoint(key) })
	return v, ok
}

// SourcePosition returns the highest position a pipeline source has stored
// in tp and the offset of that source's last record there, from the
// partition's leader. ok is false when the source has stored nothing in
// tp: a restarted source trims what each partition already has before
// sending, so that no batch straddles a partition's stored position.
func (l *Log) SourcePosition(tp TopicPartition, source string) (pos []byte, lastOffset int64, ok bool, err error) {
	_, s, err := l.leading(tp)
	if err != nil {
		return nil, 0, false, err
	}
	pos, lastOffset, ok = s.Partition().SourcePosition(source)
	return pos, lastOffset, ok, nil
}

// PutPipeline stores a pipeline's spec and returns its new version.
func (l *Log) PutPipeline(ctx context.Context, name string, spec []byte) (uint64, error) {
	res, err := l.meta.Propose(ctx, meta.PutPipeline{Name: name, Spec: spec})
	if err != nil {
		return 0, mapReplicaError(err)
	}
	return res.Version, res.Err()
}

// DeletePipeline deletes a pipeline's spec.
func (l *Log) DeletePipeline(ctx context.Context, name string) error {
	return l.proposeMeta(ctx, meta.DeletePipeline{Name: name})
}

// Pipelines lists the stored pipelines, sorted by name.
func (l *Log) Pipelines() []meta.Pipeline {
	var out []meta.Pipeline
	l.meta.Read(func(s *meta.State) { out = s.Pipelines() })
	return out
}

// Pipeline returns one stored pipeline.
func (l *Log) Pipeline(name string) (meta.Pipeline, bool) {
	var p meta.Pipeline
	var ok bool
	l.meta.Read(func(s *meta.State) { p, ok = s.Pipeline(name) })
	return p, ok
}

// RegisterSchema stores an Avro schema under a subject, as a schema
// registry does: the same text again returns its existing id and version.
func (l *Log) RegisterSchema(ctx context.Context, subject, schema string) (meta.SchemaVersion, error) {
	res, err := l.meta.Propose(ctx, meta.RegisterSchema{Subject: subject, Schema: schema})
	if err != nil {
		return meta.SchemaVersion{}, mapReplicaError(err)
	}
	if err := res.Err(); err != nil {
		return meta.SchemaVersion{}, err
	}
	return meta.SchemaVersion{Subject: subject, Version: int(res.Version), ID: int(res.Value), Schema: schema}, nil
}

// Schema returns a subject's schema at version, or its latest for
// meta.LatestVersion.
func (l *Log) Schema(subject string, version int) (meta.SchemaVersion, error) {
	var v meta.SchemaVersion
	var ok bool
	l.meta.Read(func(s *meta.State) { v, ok = s.Schema(subject, version) })
	if !ok {
		return v, fmt.Errorf("%w: no schema %q version %d", ErrInvalidRequest, subject, version)
	}
	return v, nil
}
