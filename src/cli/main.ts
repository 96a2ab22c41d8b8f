/**
 * The portcullis command: iptables' verbs and options, and a few commands iptables does
 * not have, all through the Portcullis service's REST API (the Unix socket by default),
 * so every change is queued, batched, checked and seen by the service's other clients
 * instead of racing them. See `portcullis --help` and README.md ("CLI").
 *
 * `main(argv, io)` runs one command line and resolves with the exit status; it never
 * exits the process and never throws, so tests run it in-process. Every failure is one
 * line on stderr, `portcullis: WHY`, with iptables' exit statuses (errors.ts). Running
 * this file (`node dist/cli/main.js`, or bin/portcullis.js) runs it on the process.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createApi } from './api.js';
import { type IptablesCommand, parseCommandLine, type WordCommand } from './argv.js';
import { bashCompletion } from './completion.js';
import { resolveConnection } from './connection.js';
import { CliError, EXIT, oneLine, usage } from './errors.js';
import { commandHelp, overviewHelp } from './help.js';
import { type Io, processIo } from './io.js';
import * as chains from './verbs/chains.js';
import type { Context } from './verbs/context.js';
import { diff } from './verbs/diff.js';
import { lint } from './verbs/lint.js';
import { list, listRules } from './verbs/list.js';
import { restore } from './verbs/restore.js';
import * as rules from './verbs/rules.js';
import * as safety from './verbs/safety.js';
import { save } from './verbs/save.js';
import { status } from './verbs/status.js';
import { trace } from './verbs/trace.js';
import { watch } from './verbs/watch.js';

type Handler<C> = (ctx: Context, cmd: C) => Promise<number>;

const VERBS: Readonly<Record<IptablesCommand['verb'], Handler<IptablesCommand>>> = {
  append: rules.append,
  check: rules.check,
  delete: rules.remove,
  insert: rules.insert,
  replace: rules.replace,
  list,
  'list-rules': listRules,
  flush: chains.flush,
  zero: chains.zero,
  'new-chain': chains.newChain,
  'delete-chain': chains.deleteChain,
  policy: chains.policy,
  rename: chains.rename,
};

const WORDS: Readonly<Record<string, Handler<WordCommand>>> = {
  save,
  restore,
  diff,
  trace,
  lint,
  watch,
  status,
  pending: safety.pending,
  confirm: safety.confirm,
  rollback: safety.rollback,
  limit: safety.limit,
  harden: safety.harden,
};

function version(): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  const v = typeof pkg === 'object' && pkg !== null && 'version' in pkg ? pkg.version : undefined;
  return typeof v === 'string' ? v : 'unknown';
}

/** Commands that need no service. */
function offline(io: Io, cmd: WordCommand): number | undefined {
  if (cmd.name !== 'completion') return undefined;
  if (cmd.operands.length !== 1 || cmd.operands[0] !== 'bash')
    throw usage('completion takes one shell: bash');
  io.stdout.write(bashCompletion());
  return EXIT.ok;
}

async function run(argv: readonly string[], io: Io): Promise<number> {
  const inv = parseCommandLine(argv);
  if (inv.common.version) {
    io.stdout.write(`portcullis ${version()}\n`);
    return EXIT.ok;
  }
  if (inv.common.help) {
    io.stdout.write(inv.helpFor === undefined ? overviewHelp() : commandHelp(inv.helpFor));
    return EXIT.ok;
  }
  const cmd = inv.command;
  if (cmd === undefined) throw usage('no command specified (portcullis --help lists them)');
  if (cmd.kind === 'command') {
    const done = offline(io, cmd);
    if (done !== undefined) return done;
  }
  const connection = await resolveConnection(inv.common.connection, io);
  const ctx: Context = { io, common: inv.common, connection, api: createApi(connection) };
  if (cmd.kind === 'iptables') return VERBS[cmd.verb](ctx, cmd);
  const handler = WORDS[cmd.name];
  if (handler === undefined) throw usage(`unknown command "${cmd.name}"`);
  return handler(ctx, cmd);
}

/** Runs one command line; resolves with the exit status. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  try {
    return await run(argv, io);
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`portcullis: ${oneLine(err.message)}\n`);
      return err.exitCode;
    }
    const why = err instanceof Error ? err.message : String(err);
    io.stderr.write(`portcullis: internal error: ${oneLine(why)}\n`);
    return EXIT.failed;
  }
}

/** Whether this module is the program (`node dist/cli/main.js`), not imported. */
function isProgram(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

/** Runs the process's command line and sets its exit status. */
export async function runProcess(): Promise<void> {
  process.exitCode = await main(process.argv.slice(2), processIo());
}

if (isProgram()) await runProcess();
