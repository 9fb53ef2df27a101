// Dashboard: messages by verdict over time (uPlot, /api/v1/stats/messages),
// verdicts per check and DNSBL hits per site per UTC day (/api/v1/stats/checks,
// /api/v1/stats/dnsbl), top refused clients and senders over the chart's period
// (/api/v1/stats/top), DNSBL totals per site (/api/v1/policy/dnsbl), queue
// recipients by state (/api/v1/queue/summary?group=state), likely address
// harvesting (/api/v1/stats/harvest) with a one-click deny. Everything refreshes
// every REFRESH_MS while the tab is visible. On a node in a cluster, the engines'
// states from /healthz (a Cluster card, and a banner while the node runs alone),
// every HEALTH_MS.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, type DailyStats, type DnsblSite, type HarvestItem, type List, type QueueGroup, type Stats, type TopItem } from '../api';
import { Button, ConfirmDialog, type ConfirmState, Field, fmtTime, Link, Loading, PageTitle, Results, useKeyed } from '../ui';
import { topSeries, topKey } from '../util';
import { aloneMessage, backlogText, clusterEngines, downEngines, inCluster, outagesText, sinceClock, type Health } from '../cluster';

const REFRESH_MS = 30000;
/* An engine lost shows within seconds: /healthz is cheap (no authentication, no query). */
const HEALTH_MS = 10000;
const PALETTE = ['#1d4e89', '#c92a2a', '#e67700', '#2b8a3e', '#6741d9', '#0b7285', '#a61e4d', '#5c677d'];
const TOP_SERIES = 7; /* more checks or sites than this: the rest as "other" */

/* The browser's time zone, as the hourly chart's axis shows it. */
const LOCAL_TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';

/*
 * A counter that steps every `ms` while the page is visible, and at once when it
 * becomes visible again; nothing is asked of the server while the tab is hidden.
 */
function useRefreshTick(ms: number): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let timer: ReturnType<typeof setInterval> | null = null;
    const start = () => {
      if (timer === null) timer = setInterval(() => setTick((t) => t + 1), ms);
    };
    const stop = () => {
      if (timer !== null) clearInterval(timer);
      timer = null;
    };
    const onVisibility = () => {
      if (document.visibilityState === 'hidden') {
        stop();
      } else {
        setTick((t) => t + 1);
        start();
      }
    };
    if (document.visibilityState !== 'hidden') start();
    document.addEventListener('visibilitychange', onVisibility);
    return () => {
      stop();
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [ms]);
  return tick;
}

/* The last answer for a query while its refresh runs: a chart does not blink every 30 s. */
function useSticky<T>(key: string, data: T | null): T | null {
  const [kept, setKept] = useState<{ key: string; data: T } | null>(null);
  useEffect(() => {
    if (data !== null) setKept({ key, data });
  }, [key, data]);
  if (data !== null) return data;
  return kept && kept.key === key ? kept.data : null;
}

interface Series {
  label: string;
  color: string;
  values: number[];
}

/* A uPlot line chart; utc: the x axis in UTC (daily counters), else the browser's zone. */
function LineChart(props: { xs: number[]; series: Series[]; ylabel: string; label: string; utc?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const data: uPlot.AlignedData = [props.xs.map((x) => x / 1000), ...props.series.map((s) => s.values)];
    const width = () => Math.max(260, el.clientWidth);
    const plot = new uPlot(
      {
        width: width(),
        height: 260,
        tzDate: props.utc ? (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC') : undefined,
        series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: props.xs.length < 60 } }))],
        axes: [{}, { label: props.ylabel }],
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      },
      data,
      el,
    );
    const onResize = () => plot.setSize({ width: width(), height: 260 });
    window.addEventListener('resize', onResize);
    return () => {
      window.removeEventListener('resize', onResize);
      plot.destroy();
    };
  }, [props.xs, props.series, props.utc]);
  return <div ref={ref} class="chart" role="img" aria-label={props.label} />;
}

const RESULTS: { key: string; color: string }[] = [
  { key: 'accepted', color: '#2b8a3e' },
  { key: 'refused', color: '#c92a2a' },
  { key: 'deferred', color: '#e67700' },
  { key: 'aborted', color: '#5c677d' },
];

function VerdictChart(props: { stats: Stats }) {
  const b = props.stats.buckets;
  const xs = b.map((x) => x.start);
  const series = RESULTS.map((r) => ({ label: r.key, color: r.color, values: b.map((x) => x.by_result[r.key] ?? 0) }));
  return <LineChart xs={xs} series={series} ylabel="messages" label="Messages by verdict over time" />;
}

/* Per UTC day, one line per check (or site), the largest TOP_SERIES and "other". */
function DailyChart(props: { stats: DailyStats; value: (bucket: DailyStats['buckets'][number]) => Record<string, number>; ylabel: string; label: string }) {
  const b = props.stats.buckets;
  const rows = b.map(props.value);
  const top = topSeries(props.stats.totals, rows, TOP_SERIES);
  const series = top.map((t, i) => ({ label: t.name, color: PALETTE[i % PALETTE.length], values: t.values }));
  return <LineChart xs={b.map((x) => x.start)} series={series} ylabel={props.ylabel} label={props.label} utc />;
}

function DailyCard(props: { title: string; path: string; days: number; tick: number; ylabel: string; empty: string;
  value: (bucket: DailyStats['buckets'][number]) => Record<string, number> }) {
  const key = JSON.stringify([props.path, props.days]);
  const r = useKeyed(JSON.stringify([key, props.tick]), () => api.get<DailyStats>(props.path, { days: props.days }));
  const stats = useSticky(key, r.data);
  const total = stats ? Object.values(stats.totals).reduce((a, c) => a + c, 0) : 0;
  return (
    <section class="card" aria-label={props.title}>
      <h2>{props.title}</h2>
      {r.error && !stats ? <p class="error" role="alert">{r.error}</p> : !stats ? <Loading what={props.title.toLowerCase()} /> : total === 0 ? (
        <p class="muted">{props.empty}</p>
      ) : (
        <DailyChart stats={stats} value={props.value} ylabel={props.ylabel} label={`${props.title} per UTC day`} />
      )}
      <p class="muted small tz">Last {props.days} days; each point is one UTC day (00:00–24:00 UTC), axis in UTC.</p>
    </section>
  );
}

const PERIOD_MS: Record<string, number> = { hour: 86400000, day: 30 * 86400000 };
const PERIOD_LABEL: Record<string, string> = { hour: 'last day', day: 'last 30 days' };

/* The top 10 refused keys over the chart's period, counted by the server. */
function TopTable(props: { title: string; by: 'client' | 'sender'; bucket: string; col: string; empty: string; tick: number }) {
  const top = useKeyed(JSON.stringify([props.by, props.bucket, props.tick]), () => {
    const to = Date.now();
    return api.get<{ items: TopItem[] }>('/api/v1/stats/top', { by: props.by, result: 'refused', from: to - PERIOD_MS[props.bucket], to, limit: 10 });
  });
  return (
    <section class="card">
      <h2>{props.title}</h2>
      <Results loading={top.loading} error={top.error} items={top.data?.items ?? null} label={props.title}
        query={`refused ${props.by}s, ${PERIOD_LABEL[props.bucket]}`} empty={<p class="muted">{props.empty}</p>}>
        {(items) => (
          <div class="table-wrap">
            <table>
              <thead><tr><th scope="col">{props.col}</th><th scope="col" class="num">Refused</th></tr></thead>
              <tbody>{items.map((t) => <tr><td class="mono">{topKey(t.key)}</td><td class="num">{t.count}</td></tr>)}</tbody>
            </table>
          </div>
        )}
      </Results>
    </section>
  );
}

/*
 * Clients that tried unknown local recipients over the chart's period: a
 * dictionary attack shows as many distinct addresses from one client.  Each
 * row opens its attempts in the message log; Deny adds a conn_deny entry.
 */
function HarvestTable(props: { bucket: string; tick: number }) {
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const harvest = useKeyed(JSON.stringify([props.bucket, props.tick]), () => {
    const to = Date.now();
    return api.get<{ items: HarvestItem[] }>('/api/v1/stats/harvest', { from: to - PERIOD_MS[props.bucket], to, limit: 10 });
  });
  return (
    <section class="card wide">
      <h2>Likely address harvesting</h2>
      <Results loading={harvest.loading} error={harvest.error} items={harvest.data?.items ?? null} label="Likely address harvesting"
        query={`unknown-recipient attempts, ${PERIOD_LABEL[props.bucket]}`}
        empty={<p class="muted">No unknown-recipient attempts in this period.</p>}>
        {(items) => (
          <div class="table-wrap">
            <table>
              <thead><tr><th scope="col">Client</th><th scope="col" class="num">Unknown recipients</th><th scope="col" class="num">Distinct</th><th scope="col" class="num">Deferred</th><th scope="col">Last seen</th><th scope="col">Action</th></tr></thead>
              <tbody>{items.map((r) => (
                <tr>
                  <td class="mono"><Link href={`/messages?client=${encodeURIComponent(r.client_addr)}&check=unknown_recipient`}>{r.client_addr}</Link></td>
                  <td class="num">{r.unknown_recipients}</td><td class="num">{r.distinct_recipients}</td><td class="num">{r.deferred}</td>
                  <td>{fmtTime(r.last_ts)}</td>
                  <td>{r.denied ? <span class="muted">denied</span> : (
                    <Button kind="danger" label={`Deny ${r.client_addr}`} onClick={() => setConfirm({
                      title: `Deny ${r.client_addr}?`,
                      body: `Adds ${r.client_addr} to the connection deny list: its next connections are refused with 554 5.7.1. It tried ${r.distinct_recipients} unknown addresses.`,
                      action: 'Deny client',
                      run: async () => {
                        await api.post('/api/v1/policy/entries', { list: 'conn_deny', value: r.client_addr, comment: 'address harvesting' });
                        harvest.reload();
                      },
                    })}>Deny</Button>
                  )}</td>
                </tr>
              ))}</tbody>
            </table>
          </div>
        )}
      </Results>
      <ConfirmDialog state={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}

/* While an engine is down: what this node still does alone, with the engine's error. */
function ClusterBanner(props: { health: Health | null; now: number }) {
  const down = downEngines(props.health);
  if (down.length === 0) return null;
  return (
    <section class="banner degraded" role="alert" aria-labelledby="cluster-banner-title">
      <h2 id="cluster-banner-title"><span aria-hidden="true">⚠ </span>Cluster degraded: this node is running alone</h2>
      {down.map((r) => (
        <p data-engine={r.name}>
          {aloneMessage(r.name, r.engine, props.now)}
          {r.engine.error && <> Error: <span class="mono">{r.engine.error}</span></>}
        </p>
      ))}
    </section>
  );
}

/*
 * One row per configured engine: its state (in words, not colour alone), since when, outages,
 * and PostgreSQL's backlog (Redis has none: what happens while it is away is not sent later).
 */
function ClusterCard(props: { health: Health; now: number; error: string }) {
  const rows = clusterEngines(props.health);
  const pg = rows.some((r) => r.name === 'postgresql');
  return (
    <section class="card cluster" aria-label="Cluster">
      <h2>Cluster</h2>
      {props.error && <p class="error" role="alert">Cannot read this node's health: {props.error}</p>}
      <div class="table-wrap">
        <table class="cluster">
          <thead><tr><th scope="col">Engine</th><th scope="col">State</th><th scope="col">Since</th><th scope="col" class="num">Outages</th>{pg && <th scope="col">Backlog</th>}</tr></thead>
          <tbody>{rows.map((r) => (
            <tr data-engine={r.name}>
              <th scope="row">{r.label}</th>
              <td data-state={r.engine.state}>
                <span class={`state ${r.engine.state}`}><span aria-hidden="true">{r.engine.state === 'up' ? '● ' : '✕ '}</span>{r.engine.state}</span>
                {r.engine.state === 'down' && r.engine.error && <span class="state-note">{r.engine.error}</span>}
              </td>
              <td class="nowrap">{r.engine.since_ms ? <time dateTime={new Date(r.engine.since_ms).toISOString()} title={fmtTime(r.engine.since_ms)}>{sinceClock(r.engine.since_ms, props.now)}</time> : '—'}</td>
              <td class="num">{outagesText(r.engine.outages)}</td>
              {pg && <td class="nowrap">{r.name === 'postgresql' ? backlogText(r.engine.backlog) : '—'}</td>}
            </tr>
          ))}</tbody>
        </table>
      </div>
      <p class="muted small">This node: {props.health.status === 'degraded' ? 'degraded (running alone)' : 'ok'}. Times in {LOCAL_TZ}; outages since moatd started; checked every {HEALTH_MS / 1000} s while this tab is visible.</p>
    </section>
  );
}

export function Dashboard() {
  const [bucket, setBucket] = useState('hour');
  const tick = useRefreshTick(REFRESH_MS);
  /* the chart always shows the period chosen, never a late answer for another */
  const chart = useKeyed(JSON.stringify([bucket, tick]), () => api.get<Stats>('/api/v1/stats/messages', { bucket }));
  const stats = useSticky(bucket, chart.data);
  const statsErr = stats ? '' : chart.error;
  const side = useKeyed(String(tick), () => Promise.all([
    api.get<List<DnsblSite>>('/api/v1/policy/dnsbl'),
    api.get<{ items: QueueGroup[] }>('/api/v1/queue/summary', { group: 'state' }),
  ]));
  const kept = useSticky('side', side.data);
  const dnsbl = kept ? kept[0].items : null;
  const queue: Record<string, number> | null = kept ? Object.fromEntries(kept[1].items.map((g) => [g.key ?? '', g.recipients])) : null;
  const [updated, setUpdated] = useState(0);
  useEffect(() => {
    if (chart.data) setUpdated(Date.now());
  }, [chart.data]);
  const days = bucket === 'day' ? 30 : 7;
  const healthTick = useRefreshTick(HEALTH_MS);
  const healthNow = useKeyed(String(healthTick), () => api.get<Health>('/healthz'));
  /* the last answer while the next is asked, and while /healthz fails (said in the card) */
  const health = useSticky('health', healthNow.data);
  const now = Date.now();

  const total = stats ? stats.buckets.reduce((s, b) => s + Object.values(b.by_result).reduce((a, c) => a + c, 0), 0) : 0;
  return (
    <section>
      <PageTitle>Dashboard</PageTitle>
      <ClusterBanner health={health} now={now} />
      {side.error && !kept && <p class="error" role="alert">{side.error}</p>}
      <p class="muted small" role="status" aria-live="off">
        Refreshes every {REFRESH_MS / 1000} s while this tab is visible{updated ? `; updated ${fmtTime(updated)}` : ''}.
      </p>
      {inCluster(health) && health && <ClusterCard health={health} now={now} error={healthNow.error} />}
      <section class="card">
        <div class="row-head">
          <h2>Messages by verdict</h2>
          <Field label="Period" name="bucket" value={bucket} onInput={setBucket}
            options={[{ value: 'hour', label: 'Last day, hourly' }, { value: 'day', label: 'Last 30 days, daily' }]} />
        </div>
        {statsErr ? <p class="error" role="alert">{statsErr}</p> : !stats ? <Loading what="statistics" /> : (
          <>
            <VerdictChart stats={stats} />
            <p class="muted">{total} messages from {fmtTime(stats.from)} to {fmtTime(stats.to)}.</p>
          </>
        )}
        <p class="muted small tz">Times in {LOCAL_TZ} (this browser's time zone){bucket === 'day' ? '; each point is one UTC day' : ''}.</p>
      </section>
      <div class="grid">
        <DailyCard title="Verdicts per check" path="/api/v1/stats/checks" days={days} tick={tick} ylabel="verdicts"
          empty="No check refused, deferred or tagged anything in this period." value={(b) => (b as { counts: Record<string, number> }).counts} />
        <DailyCard title="DNSBL hits per site over time" path="/api/v1/stats/dnsbl" days={days} tick={tick} ylabel="hits"
          empty="No DNSBL hit in this period." value={(b) => {
            const z = (b as { zones: Record<string, { hits: number }> }).zones;
            return Object.fromEntries(Object.entries(z).map(([k, v]) => [k, v.hits]));
          }} />
        <section class="card">
          <h2>Queue</h2>
          {!queue ? <Loading /> : (
            <div class="table-wrap">
              <table>
                <thead><tr><th scope="col">State</th><th scope="col" class="num">Recipients</th></tr></thead>
                <tbody>
                  {['queued', 'deferred', 'held', 'dead'].map((s) => (
                    <tr><td><Link href={`/queue?state=${s}`}>{s}</Link></td><td class="num" data-state={s}>{queue[s] ?? 0}</td></tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
        <section class="card">
          <h2>DNSBL hits per site</h2>
          {!dnsbl ? <Loading /> : dnsbl.length === 0 ? <p class="muted">No DNS blocklists configured. <Link href="/dnsbl">Add one</Link>.</p> : (
            <div class="table-wrap">
              <table>
                <thead><tr><th scope="col">Zone</th><th scope="col" class="num">Hits today</th><th scope="col" class="num">Hits</th><th scope="col" class="num">Queries</th></tr></thead>
                <tbody>{dnsbl.map((d) => <tr><td class="mono nowrap">{d.zone}</td><td class="num">{d.stats.hits_today}</td><td class="num">{d.stats.hits}</td><td class="num">{d.stats.queries}</td></tr>)}</tbody>
              </table>
            </div>
          )}
          <p class="muted small">“Today” is the current UTC day.</p>
        </section>
        <TopTable title="Top refused clients" by="client" bucket={bucket} tick={tick} col="Client" empty="No refusals in this period." />
        <TopTable title="Top refused senders" by="sender" bucket={bucket} tick={tick} col="Sender" empty="No refusal after MAIL FROM in this period." />
        <HarvestTable bucket={bucket} tick={tick} />
      </div>
      <p class="muted">Top lists and harvesting count every refusal of the period chosen above ({bucket === 'hour' ? 'last day' : 'last 30 days'}).</p>
    </section>
  );
}
