// One message's timeline (administrators): everything that happened to it in
// time order, from the SMTP conversation through the rules that fired, the
// spool, each delivery attempt with the remote reply, to quarantine release,
// delete or expiry and who did it. `TimelineView` draws one answer (the
// message log's "Show" uses it for a log row, GET /api/v1/messages/{id}/timeline);
// the page /timeline/<qid> (linked from the queue and the quarantine) asks
// GET /api/v1/timeline?qid=… (or ?message_id=… from its query string). A
// release's copy (detail queue_qid) links to the copy's own timeline.
import { api } from '../api';
import { Link, PageTitle, Results, usePath, useKeyed } from '../ui';
import { detailText, fmtZoned, ordered, type Timeline, zoneOffset } from '../quarantine';

/* "Europe/Berlin, UTC+02:00" — the zone every time of the table is given in. */
function zoneName(): string {
  let name = '';
  try {
    name = Intl.DateTimeFormat().resolvedOptions().timeZone ?? '';
  } catch {
    /* no Intl zone data: the offset alone */
  }
  const off = `UTC${zoneOffset(-new Date().getTimezoneOffset())}`;
  return name && !/^(Etc\/)?(UTC|GMT)$/.test(name) ? `${name}, ${off}` : off;
}

/*
 * An event's detail as one line. A quarantine release names the released copy
 * (`queue_qid`): a queue message of its own, whose delivery attempts are under
 * that id, so the id opens the copy's timeline.
 */
function Detail(props: { detail: Record<string, unknown> | null | undefined }) {
  const d = props.detail ?? {};
  const copy = typeof d.queue_qid === 'string' ? d.queue_qid : '';
  if (!copy) return <>{detailText(d)}</>;
  const rest = detailText(Object.fromEntries(Object.entries(d).filter(([k]) => k !== 'queue_qid')));
  return <>queue_qid=<Link href={`/timeline/${encodeURIComponent(copy)}`}>{copy}</Link>{rest ? ` ${rest}` : ''}</>;
}

export function TimelineView(props: { path: string; query: Record<string, string>; what: string }) {
  const key = JSON.stringify([props.path, props.query]);
  const r = useKeyed<Timeline>(key, () => api.get<Timeline>(props.path, props.query));
  const events = r.data ? ordered(r.data.events ?? []) : null;
  return (
    <div class="timeline">
      <Results label={`Timeline of ${props.what}`} query={`timeline of ${props.what}`} loading={r.loading} error={r.error} items={events}
        empty={<p class="muted">No events recorded for this message.</p>}>
        {(items) => (
          <>
            {r.data && (r.data.qid || r.data.message_id) && (
              <p class="muted">Queue id <span class="mono">{r.data.qid ?? '—'}</span>, Message-ID <span class="mono">{r.data.message_id || '—'}</span></p>
            )}
            <div class="table-wrap">
              <table class="timeline">
                <caption>Times in {zoneName()}</caption>
                <thead><tr><th scope="col">Time</th><th scope="col">Stage</th><th scope="col">Event</th><th scope="col">Recipient</th><th scope="col">Detail</th><th scope="col">By</th></tr></thead>
                <tbody>
                  {items.map((e) => (
                    <tr data-stage={e.stage} data-event={e.event}>
                      <td class="mono nowrap">{fmtZoned(e.ts)}</td>
                      <td>{e.stage}</td>
                      <td>{e.event}</td>
                      <td>{e.recipient ?? ''}</td>
                      <td class="detail"><Detail detail={e.detail} /></td>
                      <td>{e.actor ?? ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        )}
      </Results>
    </div>
  );
}

export function TimelinePage() {
  const path = usePath();
  const qid = decodeURIComponent(path.replace(/^\/timeline\/?/, ''));
  const messageId = new URLSearchParams(location.search).get('message_id') ?? '';
  const query: Record<string, string> = qid ? { qid } : messageId ? { message_id: messageId } : {};
  const what = qid ? `queue id ${qid}` : messageId ? `Message-ID ${messageId}` : '';
  return (
    <section>
      <PageTitle>Timeline</PageTitle>
      <p><Link href="/messages">Message log</Link> · <Link href="/quarantine">Quarantine</Link> · <Link href="/queue">Queue</Link></p>
      {what ? <TimelineView path="/api/v1/timeline" query={query} what={what} />
        : <p class="muted">Open a message's timeline from the message log, the queue or the quarantine.</p>}
    </section>
  );
}
