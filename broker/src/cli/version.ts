import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { defineCommand } from './command.ts';

export const versionCommand = defineCommand({
  name: 'version',
  summary: 'print the lnc version',
  usage: '',
  options: z.object({}),
  async run(_args, io) {
    const pkg = z.object({ version: z.string() }).parse(JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')));
    io.emit({ version: pkg.version, node: process.version }, () => `lnc ${pkg.version} (node ${process.version})`);
    return 0;
  },
});
