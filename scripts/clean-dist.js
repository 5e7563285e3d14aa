#!/usr/bin/env node
// Removes dist/ before `npm pack` / `npm publish` (the `prepack` script), so the `prepare` build
// that follows starts empty and the tarball cannot ship a module whose source was deleted.
import { rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
