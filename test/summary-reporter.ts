/**
 * Prints the closing `N passed, N failed` line CI reads. A test file that
 * fails to load, or an unhandled error, counts as a failure: a missing
 * service must never look like a green run.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of testModules) {
      let counted = 0;
      for (const t of m.children.allTests()) {
        counted++;
        const state = t.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      if (counted === 0 || m.state() === 'failed') {
        const errs = m.errors().length;
        if (counted === 0 || errs > 0) failed += Math.max(1, errs);
      }
    }
    failed += unhandledErrors.length;
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  }
}
