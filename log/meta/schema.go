package meta

import "fmt"

// SchemaVersion is one version of a subject in the schema store.
type SchemaVersion struct {
	Subject string
	Version int // 1, 2, ... within the subject
	ID      int // global: the same text has the same id under every subject
	Schema  string
}

// LatestVersion asks Schema for a subject's newest version.
const LatestVersion = -1

// schemaStore is an Avro schema store with the rules of Confluent's
// registry: ids are global and increase from 1; a subject's versions
// increase from 1; registering text a subject already has answers that
// version; the same text under another subject reuses its id. Texts are
// compared exactly, not in canonical form: the proposer may canonicalise
// before proposing. Compatibility checks are the proposer's.
type schemaStore struct {
	subjects map[string][]schemaRef // versions in order
	texts    map[int]string         // id → schema text
	ids      map[string]int         // schema text → id, derived from texts
	nextID   int
}

// schemaRef is one version of a subject.
type schemaRef struct {
	Version int
	ID      int
}

func newSchemaStore() schemaStore {
	return schemaStore{subjects: map[string][]schemaRef{}, texts: map[int]string{}, ids: map[string]int{}, nextID: 1}
}

func (s *State) registerSchema(c RegisterSchema) Result {
	st := &s.schemas
	if c.Subject == "" || len(c.Subject) > MaxNameLen {
		return refuse(fmt.Errorf("%w: subject %q: length must be 1 to %d", ErrInvalidSchema, c.Subject, MaxNameLen))
	}
	if c.Schema == "" || len(c.Schema) > MaxValueBytes {
		return refuse(fmt.Errorf("%w: subject %q: schema of %d bytes, must be 1 to %d", ErrInvalidSchema, c.Subject, len(c.Schema), MaxValueBytes))
	}
	versions := st.subjects[c.Subject]
	id, known := st.ids[c.Schema]
	if known {
		for _, v := range versions {
			if v.ID == id {
				return Result{Value: uint64(id), Version: uint64(v.Version)}
			}
		}
	} else {
		id = st.nextID
		st.nextID++
		st.texts[id] = c.Schema
		st.ids[c.Schema] = id
	}
	v := schemaRef{Version: len(versions) + 1, ID: id}
	st.subjects[c.Subject] = append(versions, v)
	s.changed()
	return Result{Value: uint64(id), Version: uint64(v.Version)}
}

// Subjects returns every subject, sorted.
func (s *State) Subjects() []string { return sortedKeys(s.schemas.subjects) }

// SchemaVersions returns a subject's version numbers, oldest first.
func (s *State) SchemaVersions(subject string) []int {
	var out []int
	for _, v := range s.schemas.subjects[subject] {
		out = append(out, v.Version)
	}
	return out
}

// Schema returns one version of a subject; LatestVersion asks for the newest.
func (s *State) Schema(subject string, version int) (SchemaVersion, bool) {
	versions := s.schemas.subjects[subject]
	if version == LatestVersion {
		version = len(versions)
	}
	if version < 1 || version > len(versions) {
		return SchemaVersion{}, false
	}
	v := versions[version-1]
	return SchemaVersion{Subject: subject, Version: v.Version, ID: v.ID, Schema: s.schemas.texts[v.ID]}, true
}

// SchemaByID returns the text of a schema by its global id.
func (s *State) SchemaByID(id int) (string, bool) {
	text, ok := s.schemas.texts[id]
	return text, ok
}

// LookupSchema finds the version of subject with exactly this text, as
// the registry's "is this schema registered" call does.
func (s *State) LookupSchema(subject, schema string) (SchemaVersion, bool) {
	id, ok := s.schemas.ids[schema]
	if !ok {
		return SchemaVersion{}, false
	}
	for _, v := range s.schemas.subjects[subject] {
		if v.ID == id {
			return SchemaVersion{Subject: subject, Version: v.Version, ID: id, Schema: schema}, true
		}
	}
	return SchemaVersion{}, false
}
