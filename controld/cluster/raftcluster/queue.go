package raftcluster

import (
	"sync"

	"github.com/godlm/godlm/controld/cluster"
)

// eventQueue is an unbounded FIFO between the Core's goroutine, which
// must never wait for the application, and the goroutine that feeds
// Events().
type eventQueue struct {
	mu     sync.Mutex
	items  []cluster.Event
	signal chan struct{} // has a value when items may be non-empty
}

func newEventQueue() *eventQueue {
	return &eventQueue{signal: make(chan struct{}, 1)}
}

func (q *eventQueue) push(evs ...cluster.Event) {
	if len(evs) == 0 {
		return
	}
	q.mu.Lock()
	q.items = append(q.items, evs...)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *eventQueue) pop() (cluster.Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil, false
	}
	e := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.items = nil // let the backing array go
	}
	return e, true
}

// feed sends the queue's events to out until stop; once done is closed
// it sends what is left and returns. It closes out on return.
func (q *eventQueue) feed(out chan<- cluster.Event, done, stop <-chan struct{}) {
	defer close(out)
	for {
		e, ok := q.pop()
		if !ok {
			select {
			case <-q.signal:
				continue
			case <-done:
				if e, ok = q.pop(); !ok {
					return
				}
			case <-stop:
				return
			}
		}
		select {
		case out <- e:
		case <-stop:
			return
		}
	}
}
