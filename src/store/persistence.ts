/**
 * The rules files: the ruleset in iptables-save format, one file per family, at
 * netfilter-persistent's paths (`/etc/iptables/rules.v4`, `rules.v6`), so a Debian
 * host keeps booting with them and `netfilter-persistent save/reload` still work
 * alongside.
 *
 * - Writing: after every committed change (`after-change`: a ServiceObserver, so
 *   the service knows nothing of it), on demand (`save()`: POST /v1/save, gRPC
 *   Save), or never (`off`). Requests that arrive while a write runs share the next
 *   write, which takes the model as it is when it starts: at most one write per
 *   batch, one at a time, and the files always end at the newest ruleset. Each file
 *   is written through store/durable.ts (temporary file, fsync, rename, fsync of the
 *   directory): after a crash at any moment it holds the old or the new ruleset,
 *   whole. Temporary files a killed writer left are removed at start.
 * - Loading at start (`restoreSaved`, with --restore-on-start): each file is first
 *   checked with `iptables-restore --test`; a file that fails is not loaded and the
 *   start fails with one sentence naming the file and the line. Then it is loaded
 *   without --noflush: the tables it names are replaced, as netfilter-persistent does.
 *
 * Who touches what: only this module writes the rules files; it reads the model
 * through the service's public read (`getRulesetText`), never the kernel.
 */
import { dirname } from 'node:path';
import type { PersistMode } from '../config.js';
import { DomainError } from '../domain/errors.js';
import type { Family } from '../domain/family.js';
import { ExecError, type Executor } from '../exec/executor.js';
import type { Logger } from '../observe/logger.js';
import type { CommitRecord, ServiceObserver } from '../service/observer.js';
import { ensureDir, readFileIfExists, removeStaleTemps, writeFileAtomic } from './durable.js';

/** What persistence reads: the service's model as iptables-save text. */
export interface RulesSource {
  readonly families: readonly Family[];
  getRulesetText(family: Family): { revision: number; text: string };
}

export interface SavedFile {
  readonly family: Family;
  readonly path: string;
  readonly bytes: number;
}

export interface SaveResult {
  /** The revision the files hold. */
  readonly revision: number;
  readonly time: string;
  readonly files: readonly SavedFile[];
}

export interface RulesPersistenceOptions {
  readonly mode: PersistMode;
  readonly files: Readonly<Record<Family, string>>;
  readonly log: Logger;
  /** Told about every write (metrics). */
  readonly onWrite?: (e: { readonly ok: boolean; readonly ms: number; readonly revision?: number }) => void;
}

export class RulesPersistence implements ServiceObserver {
  private readonly o: RulesPersistenceOptions;
  private source: RulesSource | undefined;
  /** A write requested but not started yet: later requests share it. */
  private next: Promise<SaveResult> | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private last: SaveResult | undefined;

  constructor(options: RulesPersistenceOptions) {
    this.o = options;
  }

  get mode(): PersistMode {
    return this.o.mode;
  }

  /** The last successful write. */
  get lastSave(): SaveResult | undefined {
    return this.last;
  }

  /** Connects the source (the service) and removes temporary files a killed writer left. */
  async attach(source: RulesSource): Promise<void> {
    this.source = source;
    for (const family of source.families) {
      const removed = await removeStaleTemps(this.o.files[family]).catch(() => 0);
      if (removed > 0)
        this.o.log.info('removed temporary rules files left by a stopped writer', {
          family,
          path: this.o.files[family],
          removed,
        });
    }
  }

  committed(_records: readonly CommitRecord[]): void {
    if (this.o.mode === 'after-change') this.background();
  }

  reread(e: { readonly reason: string; readonly changed: boolean }): void {
    // A change made elsewhere is part of the ruleset the host must boot with, too.
    if (this.o.mode === 'after-change' && e.changed) this.background();
  }

  /** Writes the files now (after a write in progress); refused when persistence is off. */
  save(): Promise<SaveResult> {
    if (this.o.mode === 'off') {
      return Promise.reject(
        new DomainError(
          'failed_precondition',
          'saving is off on this service: start it with --persist on-demand or --persist after-change',
          { field: 'persist', details: { persist: 'off' } },
        ),
      );
    }
    return this.request();
  }

  /** Waits for writes in progress (at shutdown). */
  async flush(): Promise<void> {
    await this.tail;
  }

  private background(): void {
    this.request().catch((err: unknown) =>
      this.o.log.error('the rules files could not be written', {
        error: err instanceof Error ? err.message : String(err),
      }),
    );
  }

  private request(): Promise<SaveResult> {
    if (this.next) return this.next;
    const run = this.tail.then(() => {
      this.next = undefined;
      return this.writeAll();
    });
    this.next = run;
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async writeAll(): Promise<SaveResult> {
    const source = this.source;
    if (!source) throw new DomainError('unavailable', 'the service is starting: retry shortly');
    const t0 = performance.now();
    const time = new Date().toISOString();
    // One snapshot of every family, taken before the first write.
    const texts = source.families.map((family) => ({ family, ...source.getRulesetText(family) }));
    const revision = Math.max(...texts.map((t) => t.revision));
    const files: SavedFile[] = [];
    try {
      for (const { family, text } of texts) {
        const path = this.o.files[family];
        const data = `# Generated by portcullis at revision ${revision} on ${time}\n${text}`;
        await ensureDir(dirname(path), 0o755);
        await writeFileAtomic(path, data, 0o640);
        files.push({ family, path, bytes: Buffer.byteLength(data) });
      }
    } catch (err) {
      this.o.onWrite?.({ ok: false, ms: performance.now() - t0 });
      throw new DomainError('unavailable', 'the rules files could not be written', { cause: err });
    }
    this.o.onWrite?.({ ok: true, ms: performance.now() - t0, revision });
    this.last = { revision, time, files };
    return this.last;
  }
}

/** A rules file that fails `iptables-restore --test` (or cannot be read): one sentence. */
export class RestoreOnStartError extends Error {
  override readonly name = 'RestoreOnStartError';
}

/**
 * Tests and loads the rules files, family by family, before the service reads the kernel.
 * A missing file is skipped. Returns what was loaded.
 */
export async function restoreSaved(
  executor: Executor,
  families: readonly Family[],
  files: Readonly<Record<Family, string>>,
  log: Logger,
): Promise<{ family: Family; path: string; lines: number }[]> {
  const texts: { family: Family; path: string; text: string }[] = [];
  // Every file is tested before any is loaded: a bad ipv6 file leaves ipv4 untouched too.
  for (const family of families) {
    const path = files[family];
    let text: string | undefined;
    try {
      text = await readFileIfExists(path);
    } catch (err) {
      const why = err instanceof Error && 'code' in err ? String(err.code) : String(err);
      throw new RestoreOnStartError(
        `the saved ${family} rules in ${path} cannot be read (${why}): fix its permissions, or start without --restore-on-start.`,
      );
    }
    if (text === undefined) {
      log.info('no saved rules to load', { family, path });
      continue;
    }
    try {
      await executor.restore(family, text, { test: true });
    } catch (err) {
      if (!(err instanceof ExecError)) throw err;
      throw new RestoreOnStartError(
        `the saved ${family} rules in ${path} fail ${program(family)} --test${where(err)}; nothing was loaded: fix or remove the file, or start without --restore-on-start.`,
      );
    }
    texts.push({ family, path, text });
  }
  const loaded: { family: Family; path: string; lines: number }[] = [];
  for (const { family, path, text } of texts) {
    try {
      await executor.restore(family, text, {});
    } catch (err) {
      if (!(err instanceof ExecError)) throw err;
      // --test checks syntax and extensions; the kernel may still refuse (a jump to a chain the file lacks).
      const done =
        loaded.length === 0
          ? 'nothing was loaded'
          : `only ${loaded.map((l) => l.path).join(' and ')} was loaded`;
      throw new RestoreOnStartError(
        `the saved ${family} rules in ${path} were refused by ${program(family)}${where(err)}; ${done}: fix or remove the file, or start without --restore-on-start.`,
      );
    }
    loaded.push({ family, path, lines: text.split('\n').length });
  }
  return loaded;
}

function program(family: Family): string {
  return family === 'ipv4' ? 'iptables-restore' : 'ip6tables-restore';
}

/** ` at line N ("the line"): what iptables said`, as far as it is known. */
function where(err: ExecError): string {
  const at = err.line === undefined ? '' : ` at line ${err.line}`;
  const quoted = err.lineText === undefined ? '' : ` (${JSON.stringify(err.lineText.slice(0, 120))})`;
  const detail = err.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('Error occurred at line') && !l.startsWith('Try `'))
    .join(' ')
    .replace(/\s+/g, ' ')
    .slice(0, 200)
    .replace(/\.$/, '');
  return `${at}${quoted}${detail ? `: ${detail}` : ''}`;
}
