/**
 * `npm run gen:crds`: writes crds/*.yaml from the operator's zod schemas.
 * `npm run gen:crds -- --check`: exits 1 if a committed file differs from a fresh render (for CI).
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedCrdFiles, lanceClusterCrd, lanceRestoreCrd, structuralProblems } from '../operator/src/api/crd.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

const problems = [lanceClusterCrd(), lanceRestoreCrd()].flatMap((crd) =>
  structuralProblems(crd.spec.versions[0].schema.openAPIV3Schema).map((p) => `${crd.metadata.name}: ${p}`),
);
if (problems.length > 0) {
  process.stderr.write(`gen-crds: the generated schemas are not structural:\n  ${problems.join('\n  ')}\n`);
  process.exit(1);
}

// The Helm chart ships the same CRDs (charts/lance-operator/crds/, checked by test/chart/).
const files = generatedCrdFiles().flatMap((f) => (f.path.startsWith('crds/') ? [f, { ...f, path: `charts/lance-operator/${f.path}` }] : [f]));
let stale = 0;
for (const f of files) {
  const path = join(root, f.path);
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === f.content) continue;
  if (check) {
    process.stderr.write(`gen-crds: ${f.path} is stale; run npm run gen:crds\n`);
    stale++;
    continue;
  }
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, f.content);
  process.stdout.write(`wrote ${f.path}\n`);
}
process.exit(stale > 0 ? 1 : 0);
