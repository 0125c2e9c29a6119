/**
 * Ports for test processes that are stopped and restarted on the SAME port (brokers killed and started again).
 * `listen(0)` hands out a port from the kernel's ephemeral range, and while the process is down an outgoing
 * connection (any client on the box) may get that very port as its source port: the restart then fails with
 * EADDRINUSE. So these come from below the ephemeral range (read from /proc; 32768 when unknown), at random,
 * checked free by a wildcard bind (which also fails if anything holds the port on any address), and never handed
 * out twice by one process.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';

const LOW = 20000;
const handedOut = new Set<number>();

function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low !== undefined && Number.isInteger(low) && low > LOW + 1000 ? low : 32768;
  } catch {
    return 32768;
  }
}
const HIGH = ephemeralLow(); // exclusive

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '0.0.0.0', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A currently free TCP port below the ephemeral range, distinct from every other one this process got. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${LOW}..${HIGH - 1} after 200 attempts`);
}
