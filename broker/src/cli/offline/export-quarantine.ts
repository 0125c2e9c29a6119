/**
 * `lnc export-quarantine`: turns a quarantine file (entries a node truncated when it rejoined under a newer leader,
 * `<data>/quarantine/*.q`, framing in broker/src/cluster/partition-raft-log.ts) into a standard export file
 * (`.lance`, docs/format.md) so an operator can inspect it with the export tools and merge it by hand (runbook's
 * split-brain step 3). The export's single partition starts at the quarantined entries' first offset and index.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { ioError, LanceError } from '../../common/errors.ts';
import { readQuarantine } from '../../cluster/partition-raft-log.ts';
import { ExportWriter, fileSink } from '../../storage/export-format.ts';
import { defineCommand } from '../command.ts';
import { renderKeyValues } from '../table.ts';

export const exportQuarantineCommand = defineCommand({
  name: 'export-quarantine',
  summary: 'write a quarantine file (entries truncated as divergent) in the export format, for manual merging',
  usage: '--file <data dir>/quarantine/<file>.q --output <file>.lance',
  options: z.object({
    file: z.string().min(1).describe('the quarantine file'),
    output: z.string().min(1).describe('the .lance file to write'),
  }),
  async run(args, io) {
    let buf: Buffer;
    try {
      buf = await readFile(args.file);
    } catch (e) {
      throw ioError('--file', args.file, e);
    }
    const { header, entries } = readQuarantine(buf, args.file);
    if (entries.length === 0) throw new LanceError('NOT_FOUND', `--file ${args.file}: the quarantine file holds no entries`, { path: args.file });
    const w = await ExportWriter.create(await fileSink(args.output), {
      topic: { id: header.group, name: `quarantine-${header.group.replace(/[^A-Za-z0-9._-]/g, '_')}`, partitions: 1, config: { quarantine: header } },
      exportedAt: new Date().toISOString(),
      tool: 'lnc export-quarantine',
    });
    try {
      await w.beginPartition({ partition: 0, startOffset: entries[0]!.firstOffset, startIndex: entries[0]!.index, prevTerm: header.prevTerm ?? 0 });
      for (const e of entries) await w.append(e);
      await w.endPartition();
      const trailer = await w.finish();
      io.emit({ file: args.file, output: path.resolve(args.output), group: header.group, truncatedAfter: header.truncatedAfter, terms: header.terms, trailer }, () => renderKeyValues([
        ['group', header.group], ['truncated after index', header.truncatedAfter], ['terms', header.terms.join(',')],
        ['entries', trailer.entries], ['records', trailer.records], ['offsets', `${header.firstOffset}..${header.nextOffset - 1}`], ['output', path.resolve(args.output)],
      ]));
      return 0;
    } catch (e) {
      await w.abort().catch(() => undefined);
      throw e;
    }
  },
});
