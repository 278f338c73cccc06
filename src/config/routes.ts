// The `routes:` section: contid selectors, record types, rule keys and the daemons each route feeds.
import { Buffer } from 'node:buffer';
import { AUDIT_MAX_KEY_LEN } from '../kernel/constants';
import { parseContidSelector } from '../contid/selectors';
import { RECORD_TYPES } from './record-types';
import { recordTypeNumber } from '../vocab/msgtypes';
import { readContainerSelector } from './route-selectors';
import type { DaemonConfig, RouteConfig } from './schema';
import { didYouMean, type Walker, type Entry } from './walk';

const ROUTE_KEYS = ['contid', 'container', 'types', 'keys', 'daemons', 'continue'] as const;

export function readRoutes(w: Walker, e: Entry, daemons: readonly DaemonConfig[]): RouteConfig[] {
  const items = w.sequence(e.value, 'routes', e.key);
  if (!items) return [];
  const names = daemons.map((d) => d.name);
  const out: RouteConfig[] = [];
  items.forEach((item, i) => {
    const where = `routes[${i}]`;
    const m = w.mapping(item, where, ROUTE_KEYS);
    if (!m) return;
    const node = w.resolve(item);
    const route: RouteConfig = {
      index: i,
      contid: [],
      types: null,
      keys: null,
      daemons: [],
      continue: false,
      pos: w.posOf(node, item),
    };
    // A route with errors is still returned; the errors make analyzeConfig withhold the whole Config anyway.
    const c = m.get('contid');
    const sel = m.get('container');
    if (sel) route.container = readContainerSelector(w, sel, where) ?? { fields: [], labels: [], text: '' };
    if (!c && !sel) w.error(node, `${where} needs a contid selector or a container selector`, item);
    else if (c) {
      const sels = w.sequence(c.value, `${where}.contid`, c.key, true);
      if (sels && sels.length === 0) w.error(c.value, `${where}.contid is an empty list; it would never match`, c.key);
      for (const s of sels ?? []) {
        const t = w.scalarText(s, `${where}.contid`, c.key);
        if (!t) continue;
        const p = parseContidSelector(t.text);
        if (typeof p === 'string') w.error(t.node, `${where}.contid: ${p}`);
        else route.contid.push(p);
      }
    }

    const ty = m.get('types');
    if (ty && w.resolve(ty.value) !== null) {
      const list = w.sequence(ty.value, `${where}.types`, ty.key, true);
      if (list) {
        const types = new Set<number>();
        for (const s of list) {
          const t = w.scalarText(s, `${where}.types`, ty.key);
          if (!t) continue;
          const n = /^[0-9]{1,5}$/.test(t.text) ? Number(t.text) : recordTypeNumber(t.text.toUpperCase());
          if (n === undefined || n < 1 || n > 0xffff) {
            w.error(
              t.node,
              `${where}.types: unknown record type "${t.text.slice(0, 40)}"${didYouMean(t.text.toUpperCase(), Object.keys(RECORD_TYPES))}`,
            );
          } else {
            types.add(n);
          }
        }
        route.types = [...types];
      }
    }

    const ks = m.get('keys');
    if (ks && w.resolve(ks.value) !== null) {
      const list = w.sequence(ks.value, `${where}.keys`, ks.key, true);
      if (list) {
        const keys = new Set<string>();
        for (const s of list) {
          const t = w.scalarText(s, `${where}.keys`, ks.key);
          if (!t) continue;
          if (t.text.length === 0 || Buffer.byteLength(t.text) > AUDIT_MAX_KEY_LEN) {
            w.error(t.node, `${where}.keys: a rule key is 1 to ${AUDIT_MAX_KEY_LEN} bytes`);
          } else {
            keys.add(t.text);
          }
        }
        route.keys = [...keys];
      }
    }

    const ds = m.get('daemons');
    if (!ds) w.error(node, `${where} needs daemons: the auxiliary daemons that receive the matching events`, item);
    else {
      const list = w.sequence(ds.value, `${where}.daemons`, ds.key, true);
      if (list && list.length === 0) w.error(ds.value, `${where}.daemons is an empty list`, ds.key);
      const set = new Set<string>();
      for (const s of list ?? []) {
        const t = w.scalarText(s, `${where}.daemons`, ds.key);
        if (!t) continue;
        if (!names.includes(t.text)) {
          const hint = t.text === 'host' ? ' (the host log is controlled by host.keep)' : didYouMean(t.text, names);
          w.error(t.node, `${where}.daemons: no daemon named "${t.text.slice(0, 70)}" is defined${hint}`);
        } else {
          set.add(t.text);
        }
      }
      route.daemons = [...set];
    }

    const co = m.get('continue');
    if (co) route.continue = w.boolean(co, `${where}.continue`) ?? false;
    out.push(route);
  });
  return out;
}
