#!/usr/bin/env node
// The command-line entry: the compiled CLI (built by `npm ci` through the `prepare` script).
import '../dist/src/cli/main.js';
