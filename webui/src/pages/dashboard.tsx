// Dashboard: messages by verdict over time (uPlot, /api/v1/stats/messages),
// top refused clients and senders over the chart's period (/api/v1/stats/top),
// DNSBL hits per site (/api/v1/policy/dnsbl), queue sizes by state (/metrics),
// likely address harvesting (/api/v1/stats/harvest) with a one-click deny.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, type DnsblSite, type HarvestItem, type List, type Stats, type TopItem } from '../api';
import { Button, ConfirmDialog, type ConfirmState, errorsOf, Field, fmtTime, Link, Loading, PageTitle, Results, useKeyed } from '../ui';
import { parseQueueMetrics, topKey } from '../util';

const RESULTS: { key: string; color: string }[] = [
  { key: 'accepted', color: '#2b8a3e' },
  { key: 'refused', color: '#c92a2a' },
  { key: 'deferred', color: '#e67700' },
  { key: 'aborted', color: '#5c677d' },
];

function VerdictChart(props: { stats: Stats }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const b = props.stats.buckets;
    const data: uPlot.AlignedData = [
      b.map((x) => x.start / 1000),
      ...RESULTS.map((r) => b.map((x) => x.by_result[r.key] ?? 0)),
    ];
    const width = () => Math.max(260, el.clientWidth);
    const plot = new uPlot(
      {
        width: width(),
        height: 260,
        series: [{}, ...RESULTS.map((r) => ({ label: r.key, stroke: r.color, width: 2, points: { show: b.length < 60 } }))],
        axes: [{}, { label: 'messages' }],
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
  }, [props.stats]);
  return <div ref={ref} class="chart" role="img" aria-label="Messages by verdict over time" />;
}

const PERIOD_MS: Record<string, number> = { hour: 86400000, day: 30 * 86400000 };
const PERIOD_LABEL: Record<string, string> = { hour: 'last day', day: 'last 30 days' };

/* The top 10 refused keys over the chart's period, counted by the server. */
function TopTable(props: { title: string; by: 'client' | 'sender'; bucket: string; col: string; empty: string }) {
  const top = useKeyed(JSON.stringify([props.by, props.bucket]), () => {
    const to = Date.now();
    return api.get<{ items: TopItem[] }>('/api/v1/stats/top', { by: props.by, result: 'refused', from: to - PERIOD_MS[props.bucket], to, limit: 10 });
  });
  return (
    <section class="card">
      <h2>{props.title}</h2>
      <Results loading={top.loading} error={top.error} items={top.data?.items ?? null} label={props.title}
        query={`refused ${props.by}s, ${PERIOD_LABEL[props.bucket]}`} empty={<p class="muted">{props.empty}</p>}>
        {(items) => (
          <table>
            <thead><tr><th scope="col">{props.col}</th><th scope="col" class="num">Refused</th></tr></thead>
            <tbody>{items.map((t) => <tr><td class="mono">{topKey(t.key)}</td><td class="num">{t.count}</td></tr>)}</tbody>
          </table>
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
function HarvestTable(props: { bucket: string }) {
  const [confirm, setConfirm] = useState<ConfirmState | null>(null);
  const harvest = useKeyed(props.bucket, () => {
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

export function Dashboard() {
  const [bucket, setBucket] = useState('hour');
  /* the chart always shows the period chosen, never a late answer for another */
  const chart = useKeyed(bucket, () => api.get<Stats>('/api/v1/stats/messages', { bucket }));
  const stats = chart.data;
  const statsErr = chart.error;
  const [dnsbl, setDnsbl] = useState<DnsblSite[] | null>(null);
  const [queue, setQueue] = useState<Record<string, number> | null>(null);
  const [err, setErr] = useState('');

  useEffect(() => {
    const fail = (e: unknown) => setErr(Object.values(errorsOf(e))[0]);
    api.get<List<DnsblSite>>('/api/v1/policy/dnsbl').then((l) => setDnsbl(l.items), fail);
    api.get<string>('/metrics').then((t) => setQueue(parseQueueMetrics(t)), fail);
  }, []);

  const total = stats ? stats.buckets.reduce((s, b) => s + Object.values(b.by_result).reduce((a, c) => a + c, 0), 0) : 0;
  return (
    <section>
      <PageTitle>Dashboard</PageTitle>
      {err && <p class="error" role="alert">{err}</p>}
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
      </section>
      <div class="grid">
        <section class="card">
          <h2>Queue</h2>
          {!queue ? <Loading /> : (
            <table>
              <thead><tr><th scope="col">State</th><th scope="col" class="num">Recipients</th></tr></thead>
              <tbody>
                {['queued', 'deferred', 'held', 'dead'].map((s) => (
                  <tr><td><Link href={`/queue?state=${s}`}>{s}</Link></td><td class="num" data-state={s}>{queue[s] ?? 0}</td></tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section class="card">
          <h2>DNSBL hits per site</h2>
          {!dnsbl ? <Loading /> : dnsbl.length === 0 ? <p class="muted">No DNS blocklists configured. <Link href="/dnsbl">Add one</Link>.</p> : (
            <table>
              <thead><tr><th scope="col">Zone</th><th scope="col" class="num">Hits today</th><th scope="col" class="num">Hits</th><th scope="col" class="num">Queries</th></tr></thead>
              <tbody>{dnsbl.map((d) => <tr><td>{d.zone}</td><td class="num">{d.stats.hits_today}</td><td class="num">{d.stats.hits}</td><td class="num">{d.stats.queries}</td></tr>)}</tbody>
            </table>
          )}
        </section>
        <TopTable title="Top refused clients" by="client" bucket={bucket} col="Client" empty="No refusals in this period." />
        <TopTable title="Top refused senders" by="sender" bucket={bucket} col="Sender" empty="No refusal after MAIL FROM in this period." />
        <HarvestTable bucket={bucket} />
      </div>
      <p class="muted">Top lists and harvesting count every refusal of the period chosen above ({bucket === 'hour' ? 'last day' : 'last 30 days'}).</p>
    </section>
  );
}
