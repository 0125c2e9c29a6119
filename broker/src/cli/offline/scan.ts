import { z } from 'zod';
import { defineCommand, ExitCode } from '../command.ts';
import { brokerRunningWarning } from './broker-lock.ts';
import { renderKeyValues, renderTable, type Cell } from '../table.ts';
import { requirePath } from './layout.ts';
import { checkSegment, type SegmentCheck } from './segment-check.ts';

export const ENTRY_TYPE_NAMES: Record<number, string> = { 1: 'DATA', 2: 'NOOP', 3: 'CONFIG', 4: 'CONTROL' };

export function rangeText(from: number, to: number): string {
  return to < from ? 'empty' : `${from} .. ${to}`;
}

/** JSON shape of a segment check (the in-memory index is not part of it). */
export function segmentJson(c: SegmentCheck): Record<string, unknown> {
  const { index: _index, rows, ...rest } = c;
  return { ...rest, status: c.error ? 'corrupt' : 'ok', ...(rows ? { entriesList: rows.map((r) => ({ ...r, typeName: ENTRY_TYPE_NAMES[r.type], crc: 'ok' })) } : {}) };
}

export function segmentSummary(c: SegmentCheck): [string, string | number][] {
  const pairs: [string, string | number][] = [
    ['segment', c.file],
    ['size', `${c.sizeBytes} bytes`],
    ['records', c.records],
    ['entries', c.entries],
    ['offset range', rangeText(c.firstOffset === -1 ? c.nextOffset : c.firstOffset, c.lastOffset)],
    ['index range', c.entries > 0 ? `${c.firstIndex} .. ${c.lastIndex} (last term ${c.lastTerm})` : 'empty'],
  ];
  if (!c.error) pairs.push(['crc status', `ok (${c.entries} entries verified, ${c.validEnd} bytes)`]);
  else {
    pairs.push(['crc status', `CORRUPT at byte ${c.error.position}: ${c.error.reason}`]);
    pairs.push(['last valid', c.entries > 0 ? `offset ${c.lastOffset} (Raft index ${c.lastIndex}), entry ends at byte ${c.validEnd}` : `none (first entry would start at byte ${c.validEnd})`]);
    pairs.push(['bad bytes', `${c.validEnd} .. ${c.sizeBytes} (${c.sizeBytes - c.validEnd} bytes)`]);
    if (c.afterDamage) {
      pairs.push(['after damage', c.afterDamage.validEntries > 0 ? `${c.afterDamage.validEntries} entries still verify beyond the damage (lnc repair --skip-corrupt on the directory keeps them)` : 'no valid entry beyond the damage']);
    }
  }
  return pairs;
}

export const scanCommand = defineCommand({
  name: 'scan',
  summary: 'check one segment file: record count, offset and index range, CRC of every entry',
  usage: '--path <data>/topic_<id>/<partition>/<segment>.lnc [--verbose]',
  details: [
    'Exit code: 0 all entries verify, 1 a bad entry was found (its byte position and reason are printed), 2 usage/IO.',
    'The runbook writes topic_<id>/<segment>.lnc; segments live one level deeper, in the partition dir.',
  ].join('\n'),
  options: z.object({
    path: z.string().min(1).describe('the segment file (*.lnc)'),
    verbose: z.boolean().default(false).describe('list every entry'),
  }),
  async run(args, io) {
    const st = await requirePath(args.path, '--path', ['segment']);
    const warn = await brokerRunningWarning(args.path);
    if (warn) io.err(warn);
    const progress = io.progress('scan', st.size);
    const c = await checkSegment(args.path, { verbose: args.verbose, probeDamage: true, progress });
    progress.done();
    io.emit(segmentJson(c), () => {
      const parts = [renderKeyValues(segmentSummary(c))];
      if (c.rows) {
        const rows: Cell[][] = c.rows.map((r) => [r.position, r.size, ENTRY_TYPE_NAMES[r.type] ?? r.type, r.term, r.index, r.firstOffset, r.offsetCount, r.maxTimestamp, 'ok']);
        if (c.error) rows.push([c.error.position, null, null, null, null, null, null, null, `CORRUPT: ${c.error.reason}`]);
        parts.push('', renderTable(['position', 'size', 'type', 'term', 'index', 'offset', 'count', 'max_ts', 'crc'], rows));
      }
      return parts.join('\n');
    });
    return c.error ? ExitCode.PROBLEMS : ExitCode.OK;
  },
});
