import { Fifo } from '@x/resilience';
import type { AttemptSink, OutgoingCall } from './outgoingCall.js';

/**
 * Calls waiting locally for an endpoint with credit (bounded by the connection's `maxQueued`), in
 * arrival order, on `@x/resilience`'s {@link Fifo}. A call that leaves early (settled, cancelled)
 * is only marked; its entry is skipped when it reaches the head.
 */
export class AdmissionQueue {
  private readonly fifo = new Fifo<OutgoingCall>();
  private count = 0;

  /** Calls waiting. */
  get size(): number {
    return this.count;
  }

  /** Queues `call`; `sink` receives the outcome of the attempt once it is sent. */
  add(call: OutgoingCall, sink: AttemptSink): void {
    call.waiting = true;
    call.pendingSink = sink;
    this.fifo.push(call);
    this.count++;
  }

  /** The oldest call still waiting, left in the queue. */
  peek(): OutgoingCall | undefined {
    for (let call = this.fifo.peek(); call !== undefined; call = this.fifo.peek()) {
      if (call.waiting && !call.done) return call;
      this.fifo.shift();
    }
    return undefined;
  }

  /** Takes `call` out (the head after {@link peek}, or anywhere); returns its sink, undefined when it was not waiting. */
  remove(call: OutgoingCall): AttemptSink | undefined {
    if (!call.waiting) return undefined;
    if (this.fifo.peek() === call) this.fifo.shift();
    const sink = call.pendingSink;
    call.waiting = false;
    call.pendingSink = undefined;
    if (--this.count === 0 && this.fifo.length > 0) this.fifo.drain();
    return sink;
  }

  /** Takes every waiting call out, oldest first, with its sink. */
  removeAll(): [OutgoingCall, AttemptSink][] {
    const out: [OutgoingCall, AttemptSink][] = [];
    for (const call of this.fifo.drain()) {
      if (!call.waiting || call.done) continue;
      const sink = this.remove(call);
      if (sink) out.push([call, sink]);
    }
    this.count = 0;
    return out;
  }
}
