import { defineConfig } from 'vitest/config';

// Test files live beside the code (*.test.ts) and in test/ for cross-process suites.
// Process-spawning suites allocate their own ports and clean up by pid, so files may run in parallel.
export default defineConfig({
  test: {
    include: ['broker/**/*.test.ts', 'operator/**/*.test.ts', 'test/**/*.test.ts', 'scripts/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
