/**
 * The layering rules of ARCHITECTURE.md that the compiler cannot see, checked on the
 * import statements of src/:
 * - src/domain is pure: it imports nothing from the rest of src (only itself and node:);
 * - src/exec/testing (the fake executor and the restore-input parser) is test support:
 *   no production module imports it;
 * - the front doors (src/transport) see the service only through its narrow port,
 *   service/api.ts (and the transport-neutral idempotency store);
 * - src/service speaks no iptables syntax: it uses typed commands and the codec, never
 *   builds option strings itself.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every relative module a file imports or re-exports, as a path under src/ (`exec/executor.ts`). */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(?\s*)'(\.{1,2}\/[^']+)'/g)].map(
    (m) => m[1] as string,
  );
  return specs.map((s) => relative(SRC, resolve(dirname(file), s)).replace(/\.js$/, '.ts'));
}

const FILES = sourceFiles(SRC).map((f) => ({ file: relative(SRC, f), imports: relativeImports(f) }));

describe('layering of src/', () => {
  it('finds the sources and their imports', () => {
    expect(FILES.length).toBeGreaterThan(50);
    expect(FILES.find((f) => f.file === 'domain/rule.ts')?.imports).toContain('domain/model.ts');
  });

  it('src/domain imports nothing outside src/domain', () => {
    const leaks = FILES.filter((f) => f.file.startsWith('domain/')).flatMap((f) =>
      f.imports.filter((i) => !i.startsWith('domain/')).map((i) => `${f.file} -> ${i}`),
    );
    expect(leaks).toEqual([]);
  });

  it('src/transport reaches the service only through service/api.ts', () => {
    const allowed = new Set(['service/api.ts', 'service/idempotency.ts']);
    const leaks = FILES.filter((f) => f.file.startsWith('transport/')).flatMap((f) =>
      f.imports.filter((i) => i.startsWith('service/') && !allowed.has(i)).map((i) => `${f.file} -> ${i}`),
    );
    expect(leaks).toEqual([]);
  });

  it('src/service writes no iptables option strings', () => {
    const options = /'(-[ADIRNXFPEZ]|-[jgm]|--(?:dport|sport|jump|append|insert|delete|match))'/;
    const offenders = FILES.filter((f) => f.file.startsWith('service/')).filter((f) =>
      options.test(readFileSync(join(SRC, f.file), 'utf8')),
    );
    expect(offenders.map((f) => f.file)).toEqual([]);
  });

  it('only src/exec/testing itself imports src/exec/testing', () => {
    const leaks = FILES.filter((f) => !f.file.startsWith('exec/testing/')).flatMap((f) =>
      f.imports.filter((i) => i.startsWith('exec/testing/')).map((i) => `${f.file} -> ${i}`),
    );
    expect(leaks).toEqual([]);
  });
});
