// Type-level compatibility: the same sources must compile against the real
// pg-boss typings and against our index.d.ts (see __test__/types/).

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function typecheck(project) {
  try {
    execFileSync(process.execPath, [tsc, '-p', project, '--noEmit'], {
      cwd: root,
      encoding: 'utf8',
      stdio: 'pipe',
    });
    return { code: 0, output: '' };
  } catch (err) {
    return { code: err.status ?? 1, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

describe('TypeScript drop-in compatibility', () => {
  test.each([
    ['app.ts and wrong.ts', 'real pg-boss typings', '__test__/types/tsconfig.ref.json'],
    ['app.ts and wrong.ts', 'pg-boss-native index.d.ts', '__test__/types/tsconfig.native.json'],
    ['adapters.ts (over the real knex, Kysely, drizzle and PGlite)', 'real pg-boss typings', '__test__/types/tsconfig.adapters.ref.json'],
    ['adapters.ts (over the real knex, Kysely, drizzle and PGlite)', 'pg-boss-native index.d.ts', '__test__/types/tsconfig.adapters.native.json'],
  ])('%s type-check against %s', (_files, _label, project) => {
    const { code, output } = typecheck(project);
    expect(output).toBe('');
    expect(code).toBe(0);
  }, 120_000);
});
