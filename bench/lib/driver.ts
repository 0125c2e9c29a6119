/** One system under test, seen by the load generators: `send()` writes one unit (a batch of records) durably. */
export interface Driver {
  recordsPerUnit: number;
  recordBytes: number;
  send(): Promise<void>;
  close(): Promise<void>;
}

/** records per request/batch for a record size: about 64 KiB of payload per unit, at least 1 record */
export function recordsPerUnit(recordBytes: number): number {
  return Math.max(1, Math.round(65536 / recordBytes));
}
