// Dashboard: messages by verdict over time (uPlot, /api/v1/stats/messages),
// top refused clients and senders (latest refusals in /api/v1/messages),
// DNSBL hits per site (/api/v1/policy/dnsbl), queue sizes by state (/metrics).
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, fetchAll, type DnsblSite, type List, type Message, type Stats } from '../api';
import { errorsOf, Field, fmtTime, Link, Loading, PageTitle } from '../ui';
import { parseQueueMetrics, topCounts } from '../util';

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

function TopTable(props: { title: string; rows: [string, number][]; col: string; empty: string }) {
  return (
    <section class="card">
      <h2>{props.title}</h2>
      {props.rows.length === 0 ? <p class="muted">{props.empty}</p> : (
        <table>
          <thead><tr><th scope="col">{props.col}</th><th scope="col" class="num">Refused</th></tr></thead>
          <tbody>{props.rows.map(([k, n]) => <tr><td>{k}</td><td class="num">{n}</td></tr>)}</tbody>
        </table>
      )}
    </section>
  );
}

export function Dashboard() {
  const [bucket, setBucket] = useState('hour');
  const [stats, setStats] = useState<Stats | null>(null);
  const [statsErr, setStatsErr] = useState('');
  const [refused, setRefused] = useState<{ items: Message[]; complete: boolean } | null>(null);
  const [dnsbl, setDnsbl] = useState<DnsblSite[] | null>(null);
  const [queue, setQueue] = useState<Record<string, number> | null>(null);
  const [err, setErr] = useState('');

  useEffect(() => {
    setStats(null);
    setStatsErr('');
    api.get<Stats>('/api/v1/stats/messages', { bucket }).then(setStats, (e) => setStatsErr(Object.values(errorsOf(e))[0]));
  }, [bucket]);
  useEffect(() => {
    const fail = (e: unknown) => setErr(Object.values(errorsOf(e))[0]);
    fetchAll<Message>('/api/v1/messages', { result: 'refused' }, 2000).then(setRefused, fail);
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
        {!refused ? <section class="card"><Loading what="refusals" /></section> : (
          <>
            <TopTable title="Top refused clients" col="Client" empty="No refusals." rows={topCounts(refused.items.map((m) => m.client_addr), 10)} />
            <TopTable title="Top refused senders" col="Sender" empty="No refusal after MAIL FROM." rows={topCounts(refused.items.filter((m) => m.sender !== null).map((m) => m.sender), 10)} />
          </>
        )}
      </div>
      {refused && !refused.complete && <p class="muted">Top lists count the latest {refused.items.length} refusals.</p>}
    </section>
  );
}
