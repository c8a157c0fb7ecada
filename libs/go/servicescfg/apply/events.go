package apply

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Phase is the part of a node's life an event is about.
type Phase string

const (
	PhaseApply Phase = "apply"
	PhaseWait  Phase = "wait"
	PhasePrune Phase = "prune"
	// PhaseBootstrap is a bootstrap step of install run on the server
	// (its group is "bootstrap" too).
	PhaseBootstrap Phase = "bootstrap"
)

// Status is what happened.
type Status string

const (
	// StatusWaiting: the node waits for others before it starts. Only
	// interactive displays show it; the events file does not record it.
	StatusWaiting Status = "waiting"
	StatusStarted Status = "started"
	StatusReady   Status = "ready"
	StatusFailed  Status = "failed"
	StatusSkipped Status = "skipped"
	StatusPruned  Status = "pruned"
)

// Event reports progress of one node. It never holds secret values.
type Event struct {
	Time  time.Time
	Node  string
	Group string
	Phase Phase
	// Status is what happened to the node in this phase.
	Status Status
	// Objects are the node's objects as "Kind namespace/name" (or "Kind
	// name" when cluster-scoped).
	Objects []string
	// Duration is the time since the node started (for ready, failed) or
	// the time the prune took.
	Duration time.Duration
	// Message explains a failure or a skip; Waiting lists what a waiting
	// node waits for.
	Message string
	Waiting []string
}

// Observer receives progress. Reconcile calls it from several goroutines,
// one event at a time.
type Observer interface {
	Event(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Event calls f.
func (f ObserverFunc) Event(e Event) { f(e) }

// Observers fans events out to several observers in order.
type Observers []Observer

// Event forwards e to each observer.
func (os Observers) Event(e Event) {
	for _, o := range os {
		if o != nil {
			o.Event(e)
		}
	}
}

// JSONLines writes events as JSON lines, one object per event:
//
//	{"time":"2026-01-02T03:04:05.123Z","node":"api","group":"internal","phase":"wait","status":"ready","objects":["Deployment ns/api"],"duration":1.25}
//
// time is RFC 3339 in UTC, duration is in seconds. Waiting events are not
// written: a node's first line is the one that says it started.
type JSONLines struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewJSONLines returns an observer writing to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

type jsonEvent struct {
	Time     string   `json:"time"`
	Node     string   `json:"node"`
	Group    string   `json:"group"`
	Phase    Phase    `json:"phase"`
	Status   Status   `json:"status"`
	Objects  []string `json:"objects"`
	Duration float64  `json:"duration"`
	Message  string   `json:"message,omitempty"`
}

// Event writes one line.
func (j *JSONLines) Event(e Event) {
	if e.Status == StatusWaiting {
		return
	}
	objs := e.Objects
	if objs == nil {
		objs = []string{}
	}
	line, err := json.Marshal(jsonEvent{
		Time:     e.Time.UTC().Format(time.RFC3339Nano),
		Node:     e.Node,
		Group:    e.Group,
		Phase:    e.Phase,
		Status:   e.Status,
		Objects:  objs,
		Duration: e.Duration.Seconds(),
		Message:  e.Message,
	})
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		j.err = err
		return
	}
	if _, err := j.w.Write(append(line, '\n')); err != nil && j.err == nil {
		j.err = err
	}
}

// Err returns the first write error.
func (j *JSONLines) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}
