/**
 * GET /v1/events: change events as Server-Sent Events. Each event is
 * `id: <revision>`, `event: <origin>`, `data: <ChangeEvent JSON>`; comment
 * lines keep idle connections open. A small buffer of recent events lets a
 * client that reconnects with `Last-Event-ID` catch up; when the events it
 * missed are no longer buffered it gets one `resync` event and should re-read.
 * The subscription ends when the client goes (or the response fails).
 */
import type { Request, Response } from 'express';
import type { ChangeEvent, FirewallApi } from '../../service/api.js';
import { jsonReplacer } from './wire.js';

const BUFFERED_EVENTS = 1000;
/**
 * Most bytes of event frames the buffer keeps: a declarative replace of 1% of a 500k-rule table
 * is one event of about 5,000 changes (1 MB as a frame), and 1,000 of them would be a gigabyte.
 */
export const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
/** A client that does not read gets disconnected once this much output is waiting. */
const MAX_PENDING_BYTES = 4 * 1024 * 1024;

/**
 * The last events of a service, for `Last-Event-ID` catch-up: their SSE frames, written when
 * they happen. Kept as text, not as the events: a rule's text in a change is a cut of the whole
 * iptables-save output the model was read from, and a buffered event of an earlier read kept
 * that output (70 MB at 500k rules) alive; a frame is a string of its own. At most 1,000 events
 * and MAX_BUFFERED_BYTES of frames (the newest is always kept).
 */
export class EventBuffer {
  private readonly frames: { revision: number; text: string }[] = [];
  /** Bytes (UTF-16 code units) of the frames kept. */
  bytes = 0;

  constructor(service: FirewallApi) {
    service.subscribe((e) => {
      const text = frame(e);
      this.frames.push({ revision: e.revision, text });
      this.bytes += text.length;
      while (
        this.frames.length > 1 &&
        (this.frames.length > BUFFERED_EVENTS || this.bytes > MAX_BUFFERED_BYTES)
      )
        this.bytes -= (this.frames.shift() as { text: string }).text.length;
    });
  }

  /** How many events are kept. */
  get size(): number {
    return this.frames.length;
  }

  /** Frames of the events after `revision`, or undefined when some of them are no longer kept. */
  since(revision: number, current: number): string[] | undefined {
    if (revision >= current) return [];
    const first = this.frames[0];
    if (!first || first.revision > revision + 1) return undefined;
    return this.frames.filter((f) => f.revision > revision).map((f) => f.text);
  }
}

function frame(e: ChangeEvent): string {
  return `id: ${e.revision}\nevent: ${e.origin}\ndata: ${JSON.stringify(e, jsonReplacer)}\n\n`;
}

export function eventsHandler(service: FirewallApi, buffer: EventBuffer, heartbeatMs: number) {
  return (req: Request, res: Response): void => {
    res.status(200);
    res.set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      ETag: `"${service.revision}"`,
    });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    let closed = false;
    let unsubscribe: (() => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    const close = () => {
      if (closed) return;
      closed = true;
      unsubscribe?.();
      if (timer) clearInterval(timer);
      if (!res.writableEnded) res.end();
    };
    const send = (text: string) => {
      if (closed) return;
      res.write(text);
      if (res.writableLength > MAX_PENDING_BYTES) close();
    };
    req.on('close', close);
    res.on('close', close);
    res.on('error', close);
    send(`retry: 2000\n: connected at revision ${service.revision}\n\n`);
    // Subscribe and catch up in the same tick: no event can fall between the two.
    unsubscribe = service.subscribe((e) => send(frame(e)));
    const last = req.get('Last-Event-ID');
    if (last !== undefined && /^\d{1,15}$/.test(last.trim())) {
      const missed = buffer.since(Number(last.trim()), service.revision);
      if (missed === undefined)
        send(`event: resync\ndata: ${JSON.stringify({ revision: service.revision })}\n\n`);
      else for (const f of missed) send(f);
    }
    timer = setInterval(() => send(': heartbeat\n\n'), heartbeatMs);
    timer.unref();
  };
}
