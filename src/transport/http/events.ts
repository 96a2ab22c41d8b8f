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
/** A client that does not read gets disconnected once this much output is waiting. */
const MAX_PENDING_BYTES = 4 * 1024 * 1024;

/** The last events of a service, for `Last-Event-ID` catch-up. */
export class EventBuffer {
  private readonly events: ChangeEvent[] = [];

  constructor(service: FirewallApi) {
    service.subscribe((e) => {
      this.events.push(e);
      if (this.events.length > BUFFERED_EVENTS) this.events.shift();
    });
  }

  /** Events after `revision`, or undefined when some of them are no longer buffered. */
  since(revision: number, current: number): ChangeEvent[] | undefined {
    if (revision >= current) return [];
    const first = this.events[0];
    if (!first || first.revision > revision + 1) return undefined;
    return this.events.filter((e) => e.revision > revision);
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
      else for (const e of missed) send(frame(e));
    }
    timer = setInterval(() => send(': heartbeat\n\n'), heartbeatMs);
    timer.unref();
  };
}
