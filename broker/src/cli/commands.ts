/**
 * Every `lnc` command. To add one: import it here and append it to the array (one line each).
 * Names may contain spaces for sub-commands ('groups list'); see command.ts for the contract.
 */
import type { AnyCommand } from './command.ts';
import { scanCommand } from './offline/scan.ts';
import { verifyDataCommand } from './offline/verify-data.ts';
import { versionCommand } from './version.ts';

export const commands: AnyCommand[] = [
  versionCommand,
  scanCommand,
  verifyDataCommand,
];
