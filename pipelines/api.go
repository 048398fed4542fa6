package pipelines

import (
	"encoding/json"
	"errors"
	"net/http"
)

// ApplyRequest is the body of POST /v1/pipelines.
type ApplyRequest struct {
	File string `json:"file"` // the file's name, for messages
	Dir  string `json:"dir"`  // where its relative paths resolve, on the server
	YAML string `json:"yaml"`
}

// ErrorResponse is the body of every failed request.
type ErrorResponse struct {
	Error    string    `json:"error"`
	Problems []Problem `json:"problems,omitempty"`
}

// Register adds the pipeline API to mux:
//
//	POST   /v1/pipelines         apply (ApplyRequest) → Status
//	GET    /v1/pipelines         list → []Status
//	GET    /v1/pipelines/{name}  status → Status
//	DELETE /v1/pipelines/{name}  delete
//
// Mistakes in a pipeline file answer 400 with every problem listed.
func (r *Runner) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/pipelines", r.handleApply)
	mux.HandleFunc("GET /v1/pipelines", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, r.List())
	})
	mux.HandleFunc("GET /v1/pipelines/{name}", func(w http.ResponseWriter, req *http.Request) {
		st, ok := r.Status(req.PathValue("name"))
		if !ok {
			writeJSON(w, http.StatusNotFound, ErrorResponse{Error: ErrNotFound.Error() + ": " + req.PathValue("name")})
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("DELETE /v1/pipelines/{name}", func(w http.ResponseWriter, req *http.Request) {
		if err := r.Delete(req.Context(), req.PathValue("name")); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (r *Runner) handleApply(w http.ResponseWriter, req *http.Request) {
	var body ApplyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "request body: " + err.Error()})
		return
	}
	if body.File == "" {
		body.File = "pipeline.yaml"
	}
	st, err := r.Apply(req.Context(), body.File, body.Dir, []byte(body.YAML))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func writeError(w http.ResponseWriter, err error) {
	var problems Problems
	switch {
	case errors.As(err, &problems):
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: err.Error(), Problems: problems})
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: err.Error()})
	default:
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
