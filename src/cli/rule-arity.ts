/**
 * How many words follow an option of a rule, so the command line can be read as iptables'
 * getopt reads it: in `--comment -n` the `-n` is the comment, not "numeric". The typed
 * extensions' option tables (src/domain/extensions, the same ones the server's spec parser
 * uses) give each flag's arity; an option of an extension Portcullis does not type takes
 * no words here, and the words after it are read on their own (the server then reads the
 * whole spec with iptables' tokenizer anyway).
 */
import { type AnyExtension, flagIndex } from '../domain/extensions/define.js';
import { MATCH_SPECS, protocolMatch, TARGET_SPECS } from '../domain/extensions/index.js';
import { canonicalProtocol } from '../domain/protocol.js';

/** Rule-level options and how many words each takes. */
export const RULE_OPTIONS: ReadonlyMap<string, number> = new Map([
  ['-p', 1],
  ['--protocol', 1],
  ['-s', 1],
  ['--source', 1],
  ['--src', 1],
  ['-d', 1],
  ['--destination', 1],
  ['--dst', 1],
  ['-i', 1],
  ['--in-interface', 1],
  ['-o', 1],
  ['--out-interface', 1],
  ['-j', 1],
  ['--jump', 1],
  ['-g', 1],
  ['--goto', 1],
  ['-m', 1],
  ['--match', 1],
  ['-f', 0],
  ['--fragment', 0],
  ['-c', 2],
  ['--set-counters', 2],
]);

/** The extension a rule option loads (`-m recent`, `-j LOG`, `-p tcp`), if it is typed. */
export function loadedBy(option: string, value: string): AnyExtension | undefined {
  switch (option) {
    case '-m':
    case '--match':
      return MATCH_SPECS.get(value);
    case '-j':
    case '--jump':
      return TARGET_SPECS.get(value);
    case '-p':
    case '--protocol':
      try {
        return protocolMatch(canonicalProtocol(value, 'protocol').text);
      } catch {
        return undefined;
      }
    default:
      return undefined;
  }
}

/** Words after `flag` given the extensions loaded so far (latest wins, as in iptables). */
export function extensionOptionArity(flag: string, loaded: readonly AnyExtension[]): number | undefined {
  for (let i = loaded.length - 1; i >= 0; i--) {
    const ext = loaded[i];
    const arity = ext === undefined ? undefined : flagIndex(ext).get(flag)?.arity;
    if (arity !== undefined) return arity;
  }
  return undefined;
}
