/** Shared bits of the online `lnc` commands (they talk to a broker's admin API on port 1992). */
import { z } from 'zod';
import { AdminClient } from '../../admin/client.ts';

export const serverOption = z.string().min(1).describe('admin API address of a broker, host:port (e.g. localhost:1992)');

export function adminClient(server: string, timeoutMs?: number): AdminClient {
  return new AdminClient(server, timeoutMs === undefined ? {} : { timeoutMs });
}
