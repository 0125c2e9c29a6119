import { describe, expect, it } from 'vitest';
import { metadataLeaderHint } from '../../broker/src/cluster/cluster-broker.ts';

describe('metadataLeaderHint (Kafka Metadata of a replica that knows no current leader)', () => {
  it('names its last known leader with that leader\'s epoch when that is another node', () => {
    expect(metadataLeaderHint(2, { id: 1, term: 7 }, [1, 2, 3], 0)).toEqual({ id: 1, term: 7 });
    expect(metadataLeaderHint(2, { id: 1, term: 7 }, [1, 2, 3], 5)).toEqual({ id: 1, term: 7 });
  });

  it('never names itself after stepping down: the other replicas in turn, epoch unchanged (never newer than the truth)', () => {
    const named = [0, 1, 2, 3].map((turn) => metadataLeaderHint(1, { id: 1, term: 4 }, [1, 2, 3], turn));
    expect(named).toEqual([{ id: 2, term: 4 }, { id: 3, term: 4 }, { id: 2, term: 4 }, { id: 3, term: 4 }]);
  });

  it('a single replica has no one else to name', () => {
    expect(metadataLeaderHint(1, { id: 1, term: 2 }, [1], 3)).toEqual({ id: 1, term: 2 });
  });
});
