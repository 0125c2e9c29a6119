/**
 * The runbook's online steps, as printed, against real `lance` processes:
 *  §7.1  for topic in $(lnc list-topics --server localhost:1992 | jq -r '.[] .id'); do lnc export-topic ...; done
 *  §6.2  lance --standalone --data-dir /data/lance; lnc import-topic --path /data/lance --name <n> --input <file>
 *        (imported while the node runs, as printed: the broker picks the topic up once its topic.json is written)
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { killAll, lnc, ROOT, startLance } from './helpers.ts';

const execFileP = promisify(execFile);
let dir: string;
afterEach(() => killAll());
afterAll(async () => {
  killAll();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('runbook online procedures', () => {
  it('backs up every topic with the §7.1 loop and restores into a standalone node (§6.2)', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lance-runbook-'));
    const dataA = path.join(dir, 'a');
    const backup = path.join(dir, 'backup');
    const a = await startLance(dataA);
    for (const [name, lines] of [['orders', 'o1\no2\no3\n'], ['audit', 'a1\n']] as const) {
      expect((await lnc(['create-topic', '--server', a.admin, '--name', name])).code).toBe(0);
      expect((await lnc(['produce', '--server', a.admin, '--topic', name], lines)).code).toBe(0);
    }

    // §7.1, with the list-topics JSON parsed by a JSON tool the way jq does (`.[] .id`)
    const lncBin = `node ${path.join(ROOT, 'bin/lnc.js')}`;
    const script = [
      `mkdir -p ${backup}`,
      `for topic in $(${lncBin} list-topics --server ${a.admin} | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const t of JSON.parse(s))console.log(t.id)})'); do`,
      `  ${lncBin} export-topic --path ${dataA} --topic $topic --output ${backup}/topic_$topic.lance || exit 1`,
      'done',
    ].join('\n');
    await execFileP('bash', ['-c', script], { timeout: 120_000 });
    expect((await readdir(backup)).sort()).toEqual(['topic_1.lance', 'topic_2.lance']);
    process.kill(a.pid, 'SIGTERM');
    expect(await a.exited).toBe(0);

    // §6.2: a fresh standalone node; the backup is imported while it runs, exactly as the runbook prints it.
    const dataB = path.join(dir, 'b');
    let b = await startLance(dataB);
    const imported = await lnc(['import-topic', '--path', dataB, '--name', 'restored_topic', '--input', path.join(backup, 'topic_1.lance')]);
    expect(imported.stderr).toBe('');
    expect(imported.code).toBe(0);
    const consumed = await lnc(['consume', '--server', b.admin, '--topic', 'restored_topic', '--from-beginning']);
    expect(consumed.stdout).toBe('o1\no2\no3\n');
    const listed = JSON.parse((await lnc(['list-topics', '--server', b.admin])).stdout) as Array<{ id: number; name: string }>;
    expect(listed.map((t) => t.name)).toEqual(['restored_topic']);
    // and it is a normal topic: writable, and still there after a restart
    expect((await lnc(['produce', '--server', b.admin, '--topic', 'restored_topic'], 'o4\n')).code).toBe(0);
    process.kill(b.pid, 'SIGTERM');
    expect(await b.exited).toBe(0);
    b = await startLance(dataB);
    expect((await lnc(['consume', '--server', b.admin, '--topic', 'restored_topic', '--from-beginning'])).stdout).toBe('o1\no2\no3\no4\n');
  }, 240000); // spawns real processes: generous on a loaded box (a wait bound, not a speed assertion)
});
