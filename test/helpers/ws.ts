import WebSocket from 'ws';

export interface Watch {
  events: any[];
  /** Resolves with every event when the server closes the socket (after `done`). */
  closed: Promise<{ events: any[]; code: number }>;
  socket: WebSocket;
  /** Resolves when an event matching `pred` has arrived. */
  until: (pred: (e: any) => boolean, seconds?: number) => Promise<any>;
}

/** A real WebSocket client on a job's event stream. */
export function watchJob(baseUrl: string, jobId: string, query: Record<string, string | number> = {}, headers: Record<string, string> = {}): Watch {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
  const socket = new WebSocket(`${baseUrl.replace('http', 'ws')}/v1/jobs/${jobId}/events${qs ? `?${qs}` : ''}`, { headers });
  const events: any[] = [];
  const waiters: Array<{ pred: (e: any) => boolean; resolve: (e: any) => void }> = [];
  socket.on('message', (data) => {
    const event = JSON.parse(String(data));
    events.push(event);
    for (const w of waiters.splice(0)) {
      if (w.pred(event)) w.resolve(event);
      else waiters.push(w);
    }
  });
  const closed = new Promise<{ events: any[]; code: number }>((resolve, reject) => {
    socket.on('close', (code) => resolve({ events, code }));
    socket.on('error', reject);
  });
  const until = (pred: (e: any) => boolean, seconds = 60) => {
    const hit = events.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise<any>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching event within ${seconds} s; got ${JSON.stringify(events.slice(-3))}`)), seconds * 1000);
      waiters.push({ pred, resolve: (e) => { clearTimeout(timer); resolve(e); } });
    });
  };
  return { events, closed, socket, until };
}
