// Scrapes a metrics listener over real HTTP: the status and the samples as "name{labels}" -> value.
import * as http from 'node:http';

export function scrape(port: number, p = '/metrics'): Promise<{ status: number; samples: Map<string, number> }> {
  return new Promise((resolve, reject) => {
    http
      // A fresh connection each time: a kept-alive one to a listener that moved would hang up instead of refusing.
      .get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          const samples = new Map<string, number>();
          for (const l of body.split('\n'))
            if (l && !l.startsWith('#'))
              samples.set(l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1)));
          resolve({ status: res.statusCode ?? 0, samples });
        });
      })
      .once('error', reject);
  });
}
