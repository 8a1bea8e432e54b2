import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export default defineConfig({
  root,
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    // CLI processes on a busy 2-core machine (the install test runs npm and tsc beside them) can take tens of seconds.
    testTimeout: 60_000,
    hookTimeout: 300_000,
    // Integration tests start real services; keep files from fighting over two cores.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
