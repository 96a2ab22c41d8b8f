/**
 * Prometheus metrics (prom-client 15), named after the conventions of kube-proxy and Calico
 * felix (`*_iptables_restore_*`, `*_iptables_rules` by family and table, batch sizes): what an
 * operator of either recognises. Why prom-client: it is the client the Prometheus project lists
 * for Node, it writes the exposition format (and OpenMetrics) correctly, and it brings the
 * standard process_* and nodejs_* metrics.
 *
 * Where the numbers come from:
 * - the service's observer hooks (service/observer.ts): kernel transactions, batches, jobs,
 *   re-reads: counted as they happen, never blocking the queue;
 * - the doors: one call per finished request (`request`), by door, operation and code;
 * - a look at the service at scrape time (queue depth, revision, the change feed, rules and
 *   chains per family and table), so nothing is kept up to date between scrapes.
 *
 * Cardinality is bounded by design: labels are families, tables, doors, operation names from
 * the contracts, status codes, outcomes and reasons; never a rule, chain, caller or address.
 */
import client from 'prom-client';
import { type Family, TABLES } from '../domain/family.js';
import type { FirewallApi, ServiceObserver } from '../service/api.js';

const PREFIX = 'portcullis_';

/** Seconds: from a 1 ms restore to a 50k-rule rebuild. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Jobs per batch (group commit). */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export type Door = 'rest' | 'grpc' | 'socket';

/** What a scrape reads from the service: queue depth, revision, feed state, rule counts. */
export type MetricsSource = Pick<FirewallApi, 'status' | 'getRuleset' | 'families' | 'ready'>;

export interface MetricsOptions {
  /** The service, when it exists already (else {@link Metrics.attach} it: it needs the observer first). */
  readonly service?: MetricsSource;
  /** Also collect the process_* and nodejs_* metrics. @default true */
  readonly processMetrics?: boolean;
}

export class Metrics {
  readonly registry = new client.Registry();
  readonly contentType: string = this.registry.contentType;
  readonly observer: ServiceObserver;

  private readonly restoreDuration = new client.Histogram({
    name: `${PREFIX}iptables_restore_duration_seconds`,
    help: 'Time of each kernel transaction (iptables-restore, nft delete by handle, undo), by family and table it touched.',
    labelNames: ['family', 'table', 'kind'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly restoreFailures = new client.Counter({
    name: `${PREFIX}iptables_restore_failures_total`,
    help: 'Kernel transactions the kernel refused or that failed, by family.',
    labelNames: ['family', 'kind'] as const,
    registers: [this.registry],
  });
  private readonly batchSize = new client.Histogram({
    name: `${PREFIX}batch_size`,
    help: 'Change jobs applied together in one batch (group commit).',
    buckets: BATCH_BUCKETS,
    registers: [this.registry],
  });
  private readonly queueWait = new client.Histogram({
    name: `${PREFIX}queue_wait_seconds`,
    help: 'Time a change waited in the queue before its batch ran.',
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly jobs = new client.Counter({
    name: `${PREFIX}jobs_total`,
    help: 'Change jobs by outcome (ok, or the error code).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly rereads = new client.Counter({
    name: `${PREFIX}rereads_total`,
    help: 'Re-reads of the kernel ruleset, by reason (external, poll, resync, demand, feed-lost, start).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly externalChanges = new client.Counter({
    name: `${PREFIX}external_changes_total`,
    help: 'Re-reads that found the kernel changed by someone else, by how it was noticed.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly commits = new client.Counter({
    name: `${PREFIX}committed_changes_total`,
    help: 'Change jobs that changed the ruleset, by door.',
    labelNames: ['door'] as const,
    registers: [this.registry],
  });
  private readonly persistWrites = new client.Counter({
    name: `${PREFIX}rules_file_writes_total`,
    help: 'Writes of the rules files (rules.v4, rules.v6), by result (ok or failed).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private readonly persistDuration = new client.Histogram({
    name: `${PREFIX}rules_file_write_duration_seconds`,
    help: 'Time to write the rules files atomically and durably (temporary file, fsync, rename, fsync).',
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly persistLast = new client.Gauge({
    name: `${PREFIX}rules_file_last_write_timestamp_seconds`,
    help: 'When the rules files were last written successfully (Unix time).',
    registers: [this.registry],
  });
  private readonly requests = new client.Counter({
    name: `${PREFIX}requests_total`,
    help: 'Requests by door (rest, socket, grpc), operation (operationId = RPC name) and code (HTTP status or gRPC code).',
    labelNames: ['door', 'operation', 'code'] as const,
    registers: [this.registry],
  });
  private readonly requestDuration = new client.Histogram({
    name: `${PREFIX}request_duration_seconds`,
    help: 'Time to answer a request, by door and operation (an event stream counts until it closes).',
    labelNames: ['door', 'operation'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });

  private source: MetricsSource | undefined;

  /** Reads the service at every scrape from now on. */
  attach(service: MetricsSource): void {
    if (!service || typeof service.status !== 'function')
      throw new TypeError('Expected `service` to be a FirewallApi');
    this.source = service;
  }

  constructor(options: MetricsOptions = {}) {
    if (options.service) this.attach(options.service);
    if (options.processMetrics !== false) client.collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    // The service, once attached and started (scrapes before that see zeros).
    const ready = (): MetricsSource | undefined => (this.source?.ready ? this.source : undefined);

    new client.Gauge({
      name: `${PREFIX}queue_depth`,
      help: 'Changes waiting in the queue now.',
      registers,
      collect() {
        this.set(ready()?.status().queueDepth ?? 0);
      },
    });
    new client.Gauge({
      name: `${PREFIX}revision`,
      help: 'The ruleset revision: it advances with every change, ours or found in the kernel.',
      registers,
      collect() {
        this.set(ready()?.status().revision ?? 0);
      },
    });
    new client.Gauge({
      name: `${PREFIX}ready`,
      help: '1 when the service has read the kernel and accepts requests.',
      registers,
      collect() {
        this.set(ready() ? 1 : 0);
      },
    });
    new client.Gauge({
      name: `${PREFIX}nft_feed_up`,
      help: '1 while external changes are seen through the nft monitor feed; 0 when polled or not watched.',
      registers,
      collect() {
        this.set(ready()?.status().watch === 'nft-monitor' ? 1 : 0);
      },
    });
    new client.Gauge({
      name: `${PREFIX}nft_feed_lost`,
      help: '1 once the nft monitor feed was given up (external changes are then polled).',
      registers,
      collect() {
        this.set(ready()?.status().feedLost ? 1 : 0);
      },
    });
    new client.Gauge({
      name: `${PREFIX}watch_mode`,
      help: 'How external changes are noticed: 1 for the current mode (nft-monitor, poll or none).',
      labelNames: ['mode'] as const,
      registers,
      collect() {
        const mode = ready()?.status().watch ?? 'none';
        for (const m of ['nft-monitor', 'poll', 'none']) this.set({ mode: m }, m === mode ? 1 : 0);
      },
    });
    // Rules and chains per family and table, counted once per revision (a scrape reads both).
    let counted: {
      revision: number;
      rows: { family: Family; table: string; rules: number; chains: number }[];
    } = {
      revision: -1,
      rows: [],
    };
    const counts = (service: MetricsSource) => {
      const revision = service.status().revision;
      if (counted.revision === revision) return counted.rows;
      const rows: (typeof counted)['rows'] = [];
      for (const family of service.families as readonly Family[]) {
        const tables = new Map(service.getRuleset(family).ruleset.tables.map((t) => [t.name as string, t]));
        for (const table of TABLES) {
          const t = tables.get(table);
          rows.push({
            family,
            table,
            chains: t?.chains.length ?? 0,
            rules: t?.chains.reduce((n, c) => n + c.rules.length, 0) ?? 0,
          });
        }
      }
      counted = { revision, rows };
      return rows;
    };
    for (const [what, help] of [
      ['rules', 'Rules in the ruleset, by family and table.'],
      ['chains', 'Chains (built-in and user) in the ruleset, by family and table.'],
    ] as const) {
      new client.Gauge({
        name: `${PREFIX}iptables_${what}`,
        help,
        labelNames: ['family', 'table'] as const,
        registers,
        collect() {
          this.reset();
          const service = ready();
          if (!service) return;
          for (const row of counts(service)) this.set({ family: row.family, table: row.table }, row[what]);
        },
      });
    }

    this.observer = {
      kernel: (e) => {
        const seconds = e.ms / 1000;
        const tables = e.tables.length > 0 ? e.tables : ['none'];
        for (const table of tables)
          this.restoreDuration.observe({ family: e.family, table, kind: e.kind }, seconds);
        if (!e.ok) this.restoreFailures.inc({ family: e.family, kind: e.kind });
      },
      batch: (e) => this.batchSize.observe(e.jobs),
      job: (e) => {
        this.jobs.inc({ outcome: e.outcome });
        this.queueWait.observe(e.waitMs / 1000);
      },
      reread: (e) => {
        this.rereads.inc({ reason: e.reason });
        if (e.changed) this.externalChanges.inc({ reason: e.reason });
      },
      committed: (records) => {
        for (const r of records) this.commits.inc({ door: doorLabel(r.origin) });
      },
    };
  }

  /** One finished request of a door. `operation` is an operationId / RPC name (or `unknown`). */
  request(door: Door, operation: string, code: string | number, seconds: number): void {
    this.requests.inc({ door, operation, code: String(code) });
    this.requestDuration.observe({ door, operation }, seconds);
  }

  /** One write of the rules files (store/persistence.ts `onWrite`). */
  rulesFileWrite(e: { readonly ok: boolean; readonly ms: number }): void {
    this.persistWrites.inc({ result: e.ok ? 'ok' : 'failed' });
    this.persistDuration.observe(e.ms / 1000);
    if (e.ok) this.persistLast.setToCurrentTime();
  }

  /** The exposition text for a scrape. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Doors are a closed set: anything else (an internal origin) is `other`. */
function doorLabel(origin: string | undefined): string {
  return origin === 'rest' || origin === 'grpc' || origin === 'socket' ? origin : 'other';
}
