import { defineConfig } from 'vitest/config';

// The bench's own unit tests (pure parts: histogram, open-loop schedule, table rendering). Not part of `npm test`
// (the root config does not include bench/); run with `npm run bench:test`.
export default defineConfig({
  test: {
    include: ['bench/**/*.spec.ts'],
    testTimeout: 30_000,
  },
});
