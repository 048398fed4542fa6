package meta

import (
	"bytes"
	"fmt"
)

// checkName refuses names the state will not hold: empty or longer than
// limit bytes.
func checkName(what, name string, limit int) error {
	if name == "" || len(name) > limit {
		return fmt.Errorf("%w: %s %q: length must be 1 to %d", ErrInvalidRequest, what, name, limit)
	}
	return nil
}

func (s *State) putPipeline(c PutPipeline) Result {
	if err := checkName("pipeline name", c.Name, MaxNameLen); err != nil {
		return refuse(err)
	}
	if len(c.Spec) == 0 || len(c.Spec) > MaxValueBytes {
		return refuse(fmt.Errorf("%w: pipeline %q: spec of %d bytes, must be 1 to %d", ErrInvalidRequest, c.Name, len(c.Spec), MaxValueBytes))
	}
	if old, ok := s.pipelines[c.Name]; ok && bytes.Equal(old.Spec, c.Spec) {
		return Result{Version: old.Version}
	}
	p := Pipeline{Name: c.Name, Spec: bytes.Clone(c.Spec), Version: s.nextPipelineVersion}
	s.pipelines[c.Name] = p
	s.nextPipelineVersion++
	s.changed()
	return Result{Version: p.Version}
}

func (s *State) deletePipeline(c DeletePipeline) Result {
	if _, ok := s.pipelines[c.Name]; !ok {
		return refuse(fmt.Errorf("%w: %q", ErrUnknownPipeline, c.Name))
	}
	delete(s.pipelines, c.Name)
	s.changed()
	return Result{}
}

// Pipelines returns every pipeline, by name.
func (s *State) Pipelines() []Pipeline {
	out := make([]Pipeline, 0, len(s.pipelines))
	for _, name := range sortedKeys(s.pipelines) {
		p := s.pipelines[name]
		p.Spec = bytes.Clone(p.Spec)
		out = append(out, p)
	}
	return out
}

// Pipeline returns one pipeline.
func (s *State) Pipeline(name string) (Pipeline, bool) {
	p, ok := s.pipelines[name]
	p.Spec = bytes.Clone(p.Spec)
	return p, ok
}

func (s *State) putCheckpoint(c PutCheckpoint) Result {
	if err := checkName("checkpoint key", c.Key, MaxCheckpointKeyLen); err != nil {
		return refuse(err)
	}
	if len(c.Value) > MaxValueBytes {
		return refuse(fmt.Errorf("%w: checkpoint %q: %d bytes, limit %d", ErrInvalidRequest, c.Key, len(c.Value), MaxValueBytes))
	}
	old, ok := s.checkpoints[c.Key]
	switch {
	case len(c.Value) == 0 && !ok, ok && bytes.Equal(old, c.Value):
		return Result{}
	case len(c.Value) == 0:
		delete(s.checkpoints, c.Key)
	default:
		s.checkpoints[c.Key] = bytes.Clone(c.Value)
	}
	s.changed()
	return Result{}
}

// Checkpoint returns a connector checkpoint.
func (s *State) Checkpoint(key string) ([]byte, bool) {
	v, ok := s.checkpoints[key]
	return bytes.Clone(v), ok
}
