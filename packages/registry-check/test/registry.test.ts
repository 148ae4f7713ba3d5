// The registry round-trip: every public package is packed and published to a local verdaccio,
// then installed alone, by name, in a scratch project outside the repository, where its
// examples/quickstart.ts runs as ESM and as CommonJS and type-checks under `tsc --strict` with
// nodenext and bundler resolution. This is what a user gets from `npm install`.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  TSC,
  check,
  publicPackages,
  publishAll,
  run,
  startRegistry,
  type LocalRegistry,
  type PublicPackage,
} from '../src/registry.js';

const packages = publicPackages();
let registry: LocalRegistry;
const scratch = new Map<string, string>();
const installs = new Map<string, Promise<void>>();

function tsconfig(options: Record<string, unknown>) {
  return JSON.stringify(
    {
      compilerOptions: {
        strict: true,
        target: 'es2022',
        types: ['node'],
        skipLibCheck: true,
        ...options,
      },
      files: ['quickstart.ts'],
    },
    null,
    2,
  );
}

beforeAll(async () => {
  registry = await startRegistry();
  await publishAll(registry, packages);
  // One scratch project per package, installed in parallel; each test awaits its own install.
  for (const pkg of packages) {
    const dir = join(registry.dir, 'scratch', pkg.folder);
    scratch.set(pkg.name, dir);
    mkdirSync(dir, { recursive: true });
    // A default npm project: no "type", so .js files are CommonJS.
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: `scratch-${pkg.folder}`, version: '1.0.0', private: true }),
    );
    const example = join(pkg.dir, 'examples', 'quickstart.ts');
    for (const [mode, extra] of [
      ['esm', { type: 'module' }],
      ['cjs', undefined],
      ['bundler', undefined],
    ] as const) {
      mkdirSync(join(dir, mode));
      copyFileSync(example, join(dir, mode, 'quickstart.ts'));
      if (extra) writeFileSync(join(dir, mode, 'package.json'), JSON.stringify(extra));
    }
    writeFileSync(
      join(dir, 'esm', 'tsconfig.json'),
      tsconfig({ module: 'nodenext', outDir: 'out' }),
    );
    writeFileSync(
      join(dir, 'cjs', 'tsconfig.json'),
      tsconfig({ module: 'nodenext', outDir: 'out' }),
    );
    writeFileSync(
      join(dir, 'bundler', 'tsconfig.json'),
      tsconfig({ module: 'esnext', moduleResolution: 'bundler', noEmit: true }),
    );
    const install = run('npm', ['install', pkg.name, '@types/node@20', '--no-package-lock'], {
      cwd: dir,
      env: registry.npmEnv,
      timeoutMs: 180_000,
    }).then(result => {
      if (result.code !== 0)
        result = { ...result, stderr: `${result.stderr}\n--- verdaccio\n${registry.log()}` };
      check(result, `npm install ${pkg.name}`);
    });
    install.catch(() => {}); // reported by the package's tests
    installs.set(pkg.name, install);
  }
}, 240_000);

afterAll(async () => {
  await Promise.allSettled(installs.values());
  await registry?.close();
});

const installed = (dir: string, name: string) =>
  JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as {
    version: string;
    dependencies?: Record<string, string>;
  };

describe.each(packages.map(pkg => [pkg.name, pkg] as const))('%s', (_name, pkg: PublicPackage) => {
  const dir = () => scratch.get(pkg.name)!;

  test('npm install by name from the registry: the published version, real ranges, its files', async () => {
    await installs.get(pkg.name);
    const manifest = installed(dir(), pkg.name);
    expect(manifest.version).toBe(pkg.version);
    for (const [dep, range] of Object.entries(manifest.dependencies ?? {})) {
      expect(range, `${dep} range`).not.toMatch(/^workspace:/);
      if (dep.startsWith('@x/')) {
        const own = JSON.parse(
          readFileSync(join(pkg.dir, '..', dep.slice(3), 'package.json'), 'utf8'),
        ) as { version: string };
        expect(range, `${dep} range`).toBe(`^${own.version}`);
        expect(installed(dir(), dep).version).toBe(own.version);
      }
    }
    for (const file of [
      'LICENSE',
      'README.md',
      'dist/index.js',
      'dist/index.cjs',
      'dist/index.d.ts',
      'dist/index.d.cts',
    ]) {
      expect(existsSync(join(dir(), 'node_modules', pkg.name, file)), file).toBe(true);
    }
  });

  test('examples/quickstart.ts compiles (tsc --strict, module nodenext) and runs as ESM', async () => {
    await installs.get(pkg.name);
    check(await run(process.execPath, [TSC, '-p', 'esm'], { cwd: dir() }), 'tsc -p esm');
    expect(readFileSync(join(dir(), 'esm', 'out', 'quickstart.js'), 'utf8')).toMatch(
      /^import .* from '@x\//m,
    );
    const result = check(
      await run(process.execPath, ['esm/out/quickstart.js'], { cwd: dir(), timeoutMs: 60_000 }),
      'node (ESM)',
    );
    expect(result.stdout.trim().length).toBeGreaterThan(0);
  });

  test('examples/quickstart.ts compiles (tsc --strict, module nodenext) and runs as CommonJS', async () => {
    await installs.get(pkg.name);
    check(await run(process.execPath, [TSC, '-p', 'cjs'], { cwd: dir() }), 'tsc -p cjs');
    expect(readFileSync(join(dir(), 'cjs', 'out', 'quickstart.js'), 'utf8')).toMatch(
      /require\("@x\//,
    );
    const result = check(
      await run(process.execPath, ['cjs/out/quickstart.js'], { cwd: dir(), timeoutMs: 60_000 }),
      'node (CommonJS)',
    );
    expect(result.stdout.trim().length).toBeGreaterThan(0);
  });

  test('examples/quickstart.ts type-checks (tsc --strict, moduleResolution bundler, module esnext and preserve)', async () => {
    await installs.get(pkg.name);
    check(
      await run(process.execPath, [TSC, '-p', 'bundler'], { cwd: dir() }),
      'tsc -p bundler (module esnext)',
    );
    check(
      await run(process.execPath, [TSC, '-p', 'bundler', '--module', 'preserve'], { cwd: dir() }),
      'tsc -p bundler (module preserve)',
    );
  });
});
