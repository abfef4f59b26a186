package tracing

import (
	"context"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Results of an ended span, as Counter sees them.
const (
	Exported     = "exported"
	QueueFull    = "queue_full"    // dropped: the queue was full when the span ended
	ExportFailed = "export_failed" // dropped: its batch's export failed or timed out
)

// Counter counts ended spans by their fate (Exported, QueueFull,
// ExportFailed). *metrics.Spans implements it.
type Counter interface {
	TraceSpans(result string, n int)
}

// queue is the span processor: ended spans go into a bounded channel without
// ever waiting, and one goroutine exports them in batches. The SDK's
// BatchSpanProcessor also drops on a full queue, but it keeps the count to
// itself (only its experimental self-observability, through the global meter
// provider, reports it); llmproc must count every span it drops, so the
// processor is its own: the same batching, and a count for each fate.
type queue struct {
	exp      sdktrace.SpanExporter
	count    Counter
	ch       chan sdktrace.ReadOnlySpan
	batch    int
	interval time.Duration
	timeout  time.Duration

	flush    chan chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

var _ sdktrace.SpanProcessor = (*queue)(nil)

func newQueue(exp sdktrace.SpanExporter, count Counter, size, batch int, interval, timeout time.Duration) *queue {
	q := &queue{exp: exp, count: count, ch: make(chan sdktrace.ReadOnlySpan, size), batch: batch,
		interval: interval, timeout: timeout, flush: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

func (q *queue) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd never blocks: a span that finds the queue full is dropped, counted.
func (q *queue) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	select {
	case <-q.stop:
		q.count.TraceSpans(QueueFull, 1)
		return
	default:
	}
	select {
	case q.ch <- s:
	default:
		q.count.TraceSpans(QueueFull, 1)
	}
}

func (q *queue) run() {
	defer close(q.done)
	t := time.NewTicker(q.interval)
	defer t.Stop()
	buf := make([]sdktrace.ReadOnlySpan, 0, q.batch)
	send := func() {
		if len(buf) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
		err := q.exp.ExportSpans(ctx, buf)
		cancel()
		if err != nil {
			q.count.TraceSpans(ExportFailed, len(buf))
		} else {
			q.count.TraceSpans(Exported, len(buf))
		}
		clear(buf)
		buf = buf[:0]
	}
	drain := func() {
		for {
			select {
			case s := <-q.ch:
				if buf = append(buf, s); len(buf) == q.batch {
					send()
				}
			default:
				send()
				return
			}
		}
	}
	for {
		select {
		case s := <-q.ch:
			if buf = append(buf, s); len(buf) == q.batch {
				send()
			}
		case <-t.C:
			send()
		case ack := <-q.flush:
			drain()
			close(ack)
		case <-q.stop:
			drain()
			return
		}
	}
}

// ForceFlush exports what is queued now.
func (q *queue) ForceFlush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case q.flush <- ack:
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued, then shuts the exporter down.
func (q *queue) Shutdown(ctx context.Context) error {
	q.stopOnce.Do(func() { close(q.stop) })
	select {
	case <-q.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return q.exp.Shutdown(ctx)
}
