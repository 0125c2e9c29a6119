import { startStandIn } from './cluster.ts';

/**
 * CLI: `node --import tsx test/kube/main.ts [--port N] [--data-dir DIR] [--no-workloads]`. Prints the URL and the
 * kubeconfig path as one JSON line, then runs until SIGINT/SIGTERM (stopping every pod process).
 */
function parseArgs(argv: string[]): { port: number; dataDir?: string; workloads: boolean } {
  const out: { port: number; dataDir?: string; workloads: boolean } = { port: 0, workloads: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 0 || n > 65535) { process.stderr.write(`USAGE: --port must be an integer 0..65535 (got ${argv[i]})\n`); process.exit(2); }
      out.port = n;
    } else if (a === '--data-dir') out.dataDir = argv[++i];
    else if (a === '--no-workloads') out.workloads = false;
    else { process.stderr.write(`USAGE: unknown argument ${a}\nusage: main.ts [--port N] [--data-dir DIR] [--no-workloads]\n`); process.exit(2); }
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const s = await startStandIn({ port: args.port, workloads: args.workloads, ...(args.dataDir ? { dataDir: args.dataDir } : {}) });
process.stdout.write(JSON.stringify({ url: s.url, kubeconfig: s.kubeconfigPath, dataDir: s.dataDir }) + '\n');
const shutdown = () => { void s.stop().then(() => process.exit(0)); };
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
