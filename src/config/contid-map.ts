// The `contid:` section: the cgroup map that names containers found by their cgroup path.
import { compileCgroupGlob } from '../contid/cgroup-glob';
import { parseContidValue } from '../contid/selectors';
import type { CgroupMapEntry, Config } from './schema';
import type { Walker, Entry } from './walk';

const CONTID_KEYS = ['cgroup_map'] as const;
const CGROUP_KEYS = ['pattern', 'contid'] as const;

export function readContid(w: Walker, e: Entry, contid: Config['contid']): void {
  const m = w.mapping(e.value, 'contid', CONTID_KEYS, e.key);
  const cm = m?.get('cgroup_map');
  if (cm) contid.cgroupMap = readCgroupMap(w, cm);
}

function readCgroupMap(w: Walker, e: Entry): CgroupMapEntry[] {
  const items = w.sequence(e.value, 'contid.cgroup_map', e.key);
  if (!items) return [];
  const out: CgroupMapEntry[] = [];
  items.forEach((item, i) => {
    const where = `contid.cgroup_map[${i}]`;
    const m = w.mapping(item, where, CGROUP_KEYS);
    if (!m) return;
    const node = w.resolve(item);
    const pe = m.get('pattern');
    const ce = m.get('contid');
    if (!pe) w.error(node, `${where} needs a pattern`, item);
    if (!ce) w.error(node, `${where} needs a contid`, item);
    if (!pe || !ce) return;
    const pat = w.string(pe, `${where}.pattern`);
    const glob = pat === undefined ? undefined : compileCgroupGlob(pat);
    if (typeof glob === 'string') w.error(pe.value, `${where}.pattern: ${glob}`, pe.key);
    const ct = w.scalarText(ce.value, `${where}.contid`, ce.key);
    let id: bigint | undefined;
    if (ct) {
      const v = parseContidValue(ct.text);
      if (typeof v === 'string') w.error(ct.node, `${where}.contid: ${v}`);
      else id = v;
    }
    if (pat === undefined || glob === undefined || typeof glob === 'string' || id === undefined) return;
    out.push({ pattern: pat, segments: glob.segments, contid: id, pos: w.posOf(node, item) });
  });
  return out;
}
