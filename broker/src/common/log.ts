import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs (pino). Context (node, topic, partition, term) goes in child loggers:
 * `rootLogger().child({ node: 1, topic: 'orders', partition: 0 })`.
 * LANCE_LOG_LEVEL overrides the level; tests default to 'silent' unless it is set.
 */
let root: Logger | undefined;

export function rootLogger(): Logger {
  if (!root) {
    const inTest = process.env.VITEST !== undefined;
    const level = process.env.LANCE_LOG_LEVEL ?? (inTest ? 'silent' : 'info');
    root = pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
  }
  return root;
}

export function createLogger(bindings: Record<string, unknown>, destination?: pino.DestinationStream): Logger {
  if (destination) {
    return pino({ level: process.env.LANCE_LOG_LEVEL ?? 'info', timestamp: pino.stdTimeFunctions.isoTime }, destination).child(bindings);
  }
  return rootLogger().child(bindings);
}

/** A logger that drops everything (pure code under test, CLI quiet mode). */
export const silentLogger: Logger = pino({ level: 'silent' });
