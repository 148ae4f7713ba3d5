#!/usr/bin/env node
// The `x-gateway` bin. It exists before a build, so `pnpm install` can link it on a fresh clone;
// the CLI itself is `dist/cli.js` (run `pnpm build` first).
import '../dist/cli.js';
