// Unit tests of the cluster health helpers (vitest, run by `npm test` and `npm run build`).
// Times are built with the local Date constructor, so the tests hold in any time zone.
import { describe, expect, it } from 'vitest';
import {
  aloneMessage, backlogText, clusterEngines, downEngines, inCluster, outagesText, sinceClock, type ClusterEngine, type Health,
} from './cluster';

const up: ClusterEngine = { state: 'up', since_ms: new Date(2025, 4, 1, 9, 5).getTime(), outages: 0, backlog: 0, error: '' };
const down: ClusterEngine = {
  state: 'down', since_ms: new Date(2025, 4, 1, 14, 3, 59).getTime(), outages: 2, backlog: 17, error: 'Connection refused',
};
const single: Health = { status: 'ok', version: '1.0', schema: 40 };

describe('clusterEngines', () => {
  it('a single node has none', () => {
    expect(clusterEngines(single)).toEqual([]);
    expect(inCluster(single)).toBe(false);
    expect(clusterEngines(null)).toEqual([]);
  });
  it('an empty cluster object has none', () => {
    expect(inCluster({ ...single, cluster: {} })).toBe(false);
  });
  it('PostgreSQL before Redis, each only when configured', () => {
    const h: Health = { ...single, cluster: { redis: up, postgresql: down } };
    expect(clusterEngines(h).map((r) => [r.name, r.label])).toEqual([['postgresql', 'PostgreSQL'], ['redis', 'Redis']]);
    expect(clusterEngines({ ...single, cluster: { redis: up } }).map((r) => r.name)).toEqual(['redis']);
    expect(inCluster(h)).toBe(true);
  });
});

describe('downEngines', () => {
  it('only on a degraded node, only the engines down', () => {
    expect(downEngines({ ...single, status: 'degraded', cluster: { postgresql: up, redis: down } }).map((r) => r.name)).toEqual(['redis']);
    expect(downEngines({ ...single, status: 'ok', cluster: { redis: down } })).toEqual([]);
    expect(downEngines({ ...single, status: 'ok', cluster: { redis: up } })).toEqual([]);
    expect(downEngines(null)).toEqual([]);
  });
});

describe('sinceClock', () => {
  const now = new Date(2025, 4, 1, 18, 0).getTime();
  it('HH:MM on the same local day', () => expect(sinceClock(down.since_ms, now)).toBe('14:03'));
  it('with the date on another day', () => expect(sinceClock(new Date(2025, 3, 30, 23, 7).getTime(), now)).toBe('2025-04-30 23:07'));
  it('unknown is empty', () => {
    expect(sinceClock(0, now)).toBe('');
    expect(sinceClock(null, now)).toBe('');
  });
});

describe('words', () => {
  it('backlog', () => {
    expect(backlogText(0)).toBe('no changes waiting');
    expect(backlogText(1)).toBe('1 change waiting');
    expect(backlogText(17)).toBe('17 changes waiting');
  });
  it('outages', () => {
    expect(outagesText(0)).toBe('none');
    expect(outagesText(3)).toBe('3');
  });
  it('the banner per engine', () => {
    const now = new Date(2025, 4, 1, 18, 0).getTime();
    expect(aloneMessage('postgresql', down, now)).toBe('PostgreSQL unreachable since 14:03: this node keeps taking and relaying mail on its own copy; '
      + 'changes made here reach the other nodes when it is back.');
    expect(aloneMessage('redis', down, now)).toBe('Redis unreachable since 14:03: this node keeps taking and relaying mail; '
      + 'rate limits and greylist are per node until it is back.');
    expect(aloneMessage('redis', { ...down, since_ms: 0 }, now)).toMatch(/^Redis unreachable: /);
  });
});
