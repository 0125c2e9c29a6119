/**
 * `lnc` entry point (bin/lnc.js imports this file). All logic lives in run.ts; the command list in commands.ts.
 */
import { commands } from './commands.ts';
import { runCli } from './run.ts';

// `lnc scan ... | head` closes stdout early: that is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await runCli(process.argv.slice(2), commands, {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
});
