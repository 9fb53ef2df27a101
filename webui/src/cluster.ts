// The cluster's health as the dashboard words it (GET /healthz, docs/cluster.md): which
// engines this node is configured with, since when each is up or down, and what a node
// that runs alone still does. Pure helpers (no DOM, no network): unit-tested in
// cluster.test.ts.

export type EngineName = 'postgresql' | 'redis';

/* One engine of /healthz's "cluster" object (api/openapi.yaml, ClusterEngine). */
export interface ClusterEngine {
  state: 'up' | 'down';
  since_ms: number;
  outages: number;
  backlog: number;
  error: string;
}

/* GET /healthz (no authentication); "cluster" only on a node in a cluster. */
export interface Health {
  status: 'ok' | 'degraded';
  version: string;
  schema: number;
  cluster?: Partial<Record<EngineName, ClusterEngine>>;
}

export const ENGINE_LABEL: Record<EngineName, string> = { postgresql: 'PostgreSQL', redis: 'Redis' };

/* What a node does while the engine is gone, after "… unreachable since HH:MM: ". */
const ALONE: Record<EngineName, string> = {
  postgresql: 'this node keeps taking and relaying mail on its own copy; changes made here reach the other nodes when it is back',
  redis: 'this node keeps taking and relaying mail; rate limits and greylist are per node until it is back',
};

const ORDER: EngineName[] = ['postgresql', 'redis'];

export interface EngineRow {
  name: EngineName;
  label: string;
  engine: ClusterEngine;
}

/* The configured engines in a fixed order; [] on a single node (no "cluster" object). */
export function clusterEngines(h: Health | null | undefined): EngineRow[] {
  const c = h?.cluster;
  if (!c) return [];
  return ORDER.filter((n) => c[n]).map((n) => ({ name: n, label: ENGINE_LABEL[n], engine: c[n] as ClusterEngine }));
}

/* true when the dashboard shows the Cluster card: the node is in a cluster. */
export function inCluster(h: Health | null | undefined): boolean {
  return clusterEngines(h).length > 0;
}

/* The engines the banner names: those down on a node that says it is degraded. */
export function downEngines(h: Health | null | undefined): EngineRow[] {
  if (!h || h.status !== 'degraded') return [];
  return clusterEngines(h).filter((r) => r.engine.state === 'down');
}

const p2 = (n: number) => String(n).padStart(2, '0');

/*
 * A change of state in the browser's time: "14:03" on the same local day as `now`,
 * "2025-05-01 14:03" on another; '' when unknown (0: the engine has not changed state).
 */
export function sinceClock(ms: number | null | undefined, now: number): string {
  if (!ms) return '';
  const d = new Date(ms);
  const n = new Date(now);
  const hm = `${p2(d.getHours())}:${p2(d.getMinutes())}`;
  if (d.getFullYear() === n.getFullYear() && d.getMonth() === n.getMonth() && d.getDate() === n.getDate()) return hm;
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${hm}`;
}

/* PostgreSQL's backlog (outbox rows not pushed yet) in words. */
export function backlogText(n: number): string {
  if (!n || n <= 0) return 'no changes waiting';
  return `${n} ${n === 1 ? 'change' : 'changes'} waiting`;
}

/* The times an engine became unreachable since moatd started. */
export function outagesText(n: number): string {
  if (!n || n <= 0) return 'none';
  return String(n);
}

/* The banner's sentence for one engine that is down. */
export function aloneMessage(name: EngineName, engine: ClusterEngine, now: number): string {
  const since = sinceClock(engine.since_ms, now);
  return `${ENGINE_LABEL[name]} unreachable${since ? ` since ${since}` : ''}: ${ALONE[name]}.`;
}
