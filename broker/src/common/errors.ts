/**
 * Typed errors. Every error a user can see carries a stable `code` that shows up in the CLI,
 * logs, Kafka error mapping and operator conditions. Add codes here; never throw bare strings.
 */
export type LanceErrorCode =
  | 'USAGE'                 // bad CLI/config input (exit 2)
  | 'IO'                    // filesystem or network I/O failure (exit 2)
  | 'NOT_FOUND'             // a path, topic, partition or object that does not exist
  | 'CORRUPT'               // checksum or framing failure in persisted data
  | 'INVALID_CONFIG'        // config file / env value rejected by its schema
  | 'INVALID_ARGUMENT'      // request field rejected (admin API, Kafka request)
  | 'OFFSET_OUT_OF_RANGE'
  | 'NOT_LEADER'
  | 'READ_ONLY'
  | 'FENCED'
  | 'TIMEOUT'
  | 'CONFLICT'
  | 'UNSUPPORTED'
  | 'INTERNAL';

export class LanceError extends Error {
  readonly code: LanceErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: LanceErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LanceError';
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: LanceErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}

export function isLanceError(e: unknown, code?: LanceErrorCode): e is LanceError {
  return e instanceof LanceError && (code === undefined || e.code === code);
}

/** Wraps a Node system error (ENOENT, EACCES, ...) into a LanceError naming the path. */
export function ioError(op: string, path: string, cause: unknown): LanceError {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOENT') return new LanceError('NOT_FOUND', `${op}: ${path}: no such file or directory`, { path }, { cause });
  const msg = cause instanceof Error ? cause.message : String(cause);
  return new LanceError('IO', `${op}: ${path}: ${msg}`, { path, errno }, { cause });
}
