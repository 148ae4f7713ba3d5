// What a maintainer runs to release (`pnpm release`), in order, stopping at the first failure:
//   1. changeset version      bump versions from .changeset/*.md, write CHANGELOGs (no-op if none)
//   2. pnpm install           refresh the lockfile for the new versions
//   3. pnpm build             turbo: every package
//   4. pnpm check:package     publint --strict + attw --pack on every public package
//   5. registry round-trip    packages/registry-check: publish to a local verdaccio, install each
//                             package by name outside the repo, run its example (ESM, CJS), tsc
//   6. changeset publish      publish every version not on npm yet, tag it (git tags)
// Provenance: in CI with an OIDC token (GitHub Actions `permissions: id-token: write`), npm
// publishes with `--provenance` (NPM_CONFIG_PROVENANCE=true); elsewhere without it.
//   node scripts/release.mjs [--dry-run]   --dry-run: steps 1-5 only, nothing is published
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dryRun = process.argv.includes('--dry-run');
const oidc = Boolean(process.env.CI && process.env.ACTIONS_ID_TOKEN_REQUEST_URL);

/** @param {string} title @param {string} command @param {string[]} args @param {NodeJS.ProcessEnv} [env] */
function step(title, command, args, env = {}) {
  console.log(`\n=== ${title}: ${command} ${args.join(' ')}`);
  execFileSync(command, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
}

try {
  step('version', 'pnpm', ['exec', 'changeset', 'version']);
  step('install', 'pnpm', ['install', '--no-frozen-lockfile']);
  step('build', 'pnpm', ['run', 'build']);
  step('check packages', 'pnpm', ['run', 'check:package']);
  step('registry round-trip', 'pnpm', ['--filter', '@x/registry-check', 'run', 'test']);
  if (dryRun) {
    console.log('\n--dry-run: nothing published. These versions would be:');
    for (const folder of readdirSync(join(ROOT, 'packages')).sort()) {
      const file = join(ROOT, 'packages', folder, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      if (!pkg.private) console.log(`  ${pkg.name}@${pkg.version}`);
    }
  } else {
    console.log(
      oidc
        ? '\nCI with OIDC: publishing with provenance'
        : '\nPublishing without provenance (not in CI with OIDC)',
    );
    step('publish', 'pnpm', ['exec', 'changeset', 'publish'], {
      NPM_CONFIG_PROVENANCE: oidc ? 'true' : 'false',
    });
    console.log(
      '\nPublished. Commit the version bump and push it with its tags: git push --follow-tags',
    );
  }
} catch (error) {
  console.error(`\nrelease stopped: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}
