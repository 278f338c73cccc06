// Names and images from the runtimes' own files: docker's config.v2.json, podman's containers.json and images.json.
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { AuditmuxError, ExitCode } from '../errors';
import { readTrusted } from '../safefs';
import type { ContainerMeta } from './metadata';

/** A runtime file that cannot be used: wrong type, wrong shape, not this container's, too big, linked. */
export class RuntimeMetaError extends AuditmuxError {
  constructor(message: string) {
    super('E_RUNTIME_META', message, ExitCode.FAILURE);
  }
}

/** docker's config.v2.json holds the whole container config (env, mounts): a few KiB, 4 MiB bounds a hostile one. */
export const DOCKER_CONFIG_MAX = 4 * 1024 * 1024;
/** containers.json / images.json list every container or image of a store: about 1 KiB each, 16 MiB bounds them. */
export const PODMAN_STORE_MAX = 16 * 1024 * 1024;
/** Entries read from one store file at most (a store of more is refused, not truncated silently). */
export const PODMAN_STORE_ENTRIES = 65536;
const NAME_MAX = 253;
const VALUE_MAX = 4096;
const LABELS_MAX = 256;
const HEX64 = /^[0-9a-f]{64}$/;
/** docker's own rule for container names (daemon/names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`), behind its leading '/'. */
const DOCKER_NAME = /^\/[a-zA-Z0-9][a-zA-Z0-9_.-]{0,252}$/;
/** containers/storage keeps each graph driver's containers in `<root>/<driver>-containers`. */
const STORE_DIR = /^[a-z0-9]{1,32}-containers$/;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const CONTROL = /[\u0000-\u001f\u007f]/;

/** A short string without control characters (a value that ends up in records and selectors). */
function text(v: unknown, what: string, max = VALUE_MAX): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || CONTROL.test(v))
    throw new RuntimeMetaError(`${what} must be a non-empty string of at most ${max} printable characters`);
  return v;
}

function parseJson(data: string, what: string): unknown {
  try {
    return JSON.parse(data);
  } catch (e) {
    throw new RuntimeMetaError(`${what} is not JSON (${(e as Error).message})`);
  }
}

/**
 * docker's `<data-root>/containers/<id>/config.v2.json`: `ID` must be this container's, `Name` is docker's name with
 * its leading '/', `Config.Image` what the container was created from, `Config.Labels` its labels (null when none).
 */
export function parseDockerConfig(data: string, id: string): ContainerMeta {
  const doc = parseJson(data, 'config.v2.json');
  if (!isObj(doc)) throw new RuntimeMetaError('config.v2.json must be an object');
  if (doc.ID !== id) throw new RuntimeMetaError('config.v2.json is not this container\'s (its "ID" differs)');
  const name = text(doc.Name, 'config.v2.json "Name"', NAME_MAX + 1);
  if (!DOCKER_NAME.test(name)) throw new RuntimeMetaError('config.v2.json "Name" is not a docker name');
  if (!isObj(doc.Config)) throw new RuntimeMetaError('config.v2.json "Config" must be an object');
  const meta: ContainerMeta = { name: name.slice(1), image: text(doc.Config.Image, 'config.v2.json "Config.Image"') };
  const labels = doc.Config.Labels;
  if (labels !== undefined && labels !== null) {
    if (!isObj(labels)) throw new RuntimeMetaError('config.v2.json "Config.Labels" must be an object');
    const entries = Object.entries(labels);
    if (entries.length > LABELS_MAX) throw new RuntimeMetaError(`config.v2.json has over ${LABELS_MAX} labels`);
    // Null prototype: a label called __proto__ is a label.
    const out = Object.create(null) as Record<string, string>;
    for (const [k, v] of entries) {
      // The hook's annotation rule (oci-state.ts): a label is a label wherever it came from, so route selectors and
      // records see the same kind of value from docker's file as from an OCI state.
      if (
        k.length === 0 ||
        k.length > NAME_MAX ||
        CONTROL.test(k) ||
        typeof v !== 'string' ||
        v.length > VALUE_MAX ||
        CONTROL.test(v)
      )
        throw new RuntimeMetaError('config.v2.json labels must be short strings without control characters');
      out[k] = v;
    }
    if (entries.length) meta.labels = out;
  }
  return meta;
}

/** One container of a containers/storage store: its names, its image's ID and the image name podman recorded. */
export interface StoreContainer {
  names: string[];
  image?: string;
  imageName?: string;
}

function names(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > 64) throw new RuntimeMetaError(`${what} "names" must be a short list`);
  return v.map((n) => text(n, `${what} name`, NAME_MAX));
}

/**
 * containers/storage's `<driver>-containers/containers.json`: a list of `{id, names, image, metadata}`, where podman's
 * `metadata` is itself JSON with the `image-name` the container was created from (buildah's has other keys).
 */
export function parsePodmanContainers(data: string): Map<string, StoreContainer> {
  const doc = parseJson(data, 'containers.json');
  if (!Array.isArray(doc) || doc.length > PODMAN_STORE_ENTRIES)
    throw new RuntimeMetaError(`containers.json must be a list of at most ${PODMAN_STORE_ENTRIES}`);
  const out = new Map<string, StoreContainer>();
  for (const [i, e] of doc.entries()) {
    const at = `containers.json [${i}]`;
    if (!isObj(e) || typeof e.id !== 'string' || !HEX64.test(e.id))
      throw new RuntimeMetaError(`${at} must be an object with a 64-hex "id"`);
    const c: StoreContainer = { names: names(e.names, at) };
    if (e.image !== undefined && e.image !== '') {
      if (typeof e.image !== 'string' || !HEX64.test(e.image))
        throw new RuntimeMetaError(`${at} "image" must be an image ID`);
      c.image = e.image;
    }
    if (e.metadata !== undefined && e.metadata !== '') {
      const m = parseJson(text(e.metadata, `${at} "metadata"`, 65536), `${at} "metadata"`);
      if (!isObj(m)) throw new RuntimeMetaError(`${at} "metadata" must be an object`);
      if (m['image-name'] !== undefined) c.imageName = text(m['image-name'], `${at} "image-name"`);
    }
    out.set(e.id, c);
  }
  return out;
}

/** containers/storage's `<driver>-images/images.json`: image ID -> its names (`localhost/app:1`, ...). */
export function parsePodmanImages(data: string): Map<string, string[]> {
  const doc = parseJson(data, 'images.json');
  if (!Array.isArray(doc) || doc.length > PODMAN_STORE_ENTRIES)
    throw new RuntimeMetaError(`images.json must be a list of at most ${PODMAN_STORE_ENTRIES}`);
  const out = new Map<string, string[]>();
  for (const [i, e] of doc.entries()) {
    const at = `images.json [${i}]`;
    if (!isObj(e) || typeof e.id !== 'string' || !HEX64.test(e.id))
      throw new RuntimeMetaError(`${at} must be an object with a 64-hex "id"`);
    out.set(e.id, names(e.names, at));
  }
  return out;
}

export interface RuntimeMetaOptions {
  /**
   * docker's data roots (`dockerd --data-root`), searched in order. Each is resolved once, when the reader is made: a
   * relocated /var/lib/docker that is itself a symlink (to /data/docker, say) is followed then, never at a read.
   */
  dockerRoots?: readonly string[];
  /** containers/storage graph roots (podman's `--root`), beyond the one a container's conmon names; resolved alike. */
  podmanRoots?: readonly string[];
  /**
   * The owner every file read must have, and (with root) every directory on its path: root's files only, as the
   * runtimes running as root write them. Tests give their own uid.
   */
  uid?: number;
}

/** A configured root as it is at start: its real path (a symlinked root is followed here, once), or as given. */
function resolveRoot(root: string): string {
  try {
    return realpathSync(root);
  } catch {
    // Not there yet (docker installed later): the configured path, walked link-free at each read.
    return normalize(root);
  }
}

export interface RuntimeMetaCounters {
  /** Files read and parsed (a store file unchanged since its last read is not read again). */
  reads: number;
  /** Files refused: linked, not regular, another owner, too big, or not the runtime's format. */
  refused: number;
}

/** A parsed store file and what identifies the version read, so an unchanged file is parsed once. */
interface Cached<T> {
  key: string;
  value: T;
}

/** Store files cached at most (one pair per store a host uses; more only under a flood of podman roots). */
const CACHE_MAX = 16;

/**
 * Reads the runtimes' metadata files so that only root (or `uid`) can have chosen what is read: the configured roots
 * are resolved once at start; at each read every directory from `/` down is opened without following links, one below
 * the other by descriptor, and must be owned by root or `uid` and writable by nobody else; the file must be regular,
 * owned by `uid`, have one link, and fit its bound (see readTrusted). It is then parsed strictly. A file that fails any
 * of that gives no metadata and counts as refused; nothing throws out of here.
 */
export class RuntimeMetaReader {
  readonly counters: RuntimeMetaCounters = { reads: 0, refused: 0 };
  private readonly dockerRoots: readonly string[];
  private readonly podmanRoots: readonly string[];
  private readonly uid: number;
  private readonly dirOwners: readonly number[];
  private readonly containers = new Map<string, Cached<Map<string, StoreContainer>>>();
  private readonly images = new Map<string, Cached<Map<string, string[]>>>();

  constructor(o: RuntimeMetaOptions = {}) {
    this.dockerRoots = (o.dockerRoots ?? ['/var/lib/docker']).map(resolveRoot);
    this.podmanRoots = (o.podmanRoots ?? ['/var/lib/containers/storage']).map(resolveRoot);
    this.uid = o.uid ?? 0;
    this.dirOwners = [0, this.uid];
  }

  /** The file at `path` read through a trusted chain of directories (see the class), or null when absent. */
  private read(path: string, limit: number, what: string): { data: string; key: string } | null {
    if (normalize(path) !== path || !path.startsWith('/')) throw new RuntimeMetaError(`${what} path is not canonical`);
    const r = readTrusted(path, { limit, dirOwners: this.dirOwners, fileOwner: this.uid, what });
    if (!r) return null;
    this.counters.reads++;
    return {
      data: r.data.toString('utf8'),
      key: `${r.stat.dev}:${r.stat.ino}:${r.stat.size}:${r.stat.mtimeMs}`,
    };
  }

  /** Runs `fn`; a refusal counts and gives null. */
  private guarded<T>(fn: () => T | null): T | null {
    try {
      return fn();
    } catch {
      this.counters.refused++;
      return null;
    }
  }

  /** A store file parsed, from the cache while its identity (device, inode, size, mtime) is unchanged. */
  private store<T>(cache: Map<string, Cached<T>>, path: string, what: string, parse: (s: string) => T): T | null {
    return this.guarded(() => {
      const hit = cache.get(path);
      if (hit) {
        try {
          const st = statSync(path);
          if (`${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}` === hit.key) return hit.value;
        } catch {
          /* gone: read below says so */
        }
      }
      const r = this.read(path, PODMAN_STORE_MAX, what);
      if (!r) {
        cache.delete(path);
        return null;
      }
      const value = parse(r.data);
      cache.delete(path);
      if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
      cache.set(path, { key: r.key, value });
      return value;
    });
  }

  /** docker's name, image and labels for container `id` (64 hex), from the first data root that has it. */
  docker(id: string): ContainerMeta | null {
    if (!HEX64.test(id)) return null;
    for (const root of this.dockerRoots) {
      const m = this.guarded(() => {
        const r = this.read(join(root, 'containers', id, 'config.v2.json'), DOCKER_CONFIG_MAX, 'config.v2.json');
        return r && parseDockerConfig(r.data, id);
      });
      if (m) return m;
    }
    return null;
  }

  /**
   * podman's name and image for container `id`: from `storeDir` (a `<root>/<driver>-containers` directory, as the
   * container's conmon names it) and then the configured roots' stores. The image is the name podman recorded at
   * create, else the image's first name in images.json, else its ID.
   */
  podman(id: string, storeDir?: string | null): ContainerMeta | null {
    if (!HEX64.test(id)) return null;
    const dirs: string[] = [];
    if (storeDir && STORE_DIR.test(storeDir.slice(storeDir.lastIndexOf('/') + 1))) dirs.push(storeDir);
    for (const root of this.podmanRoots) {
      let list: string[] = [];
      try {
        list = readdirSync(root).filter((n) => STORE_DIR.test(n));
      } catch {
        /* no such store */
      }
      for (const n of list.sort()) if (!dirs.includes(join(root, n))) dirs.push(join(root, n));
    }
    for (const dir of dirs.slice(0, 8)) {
      const c = this.store(
        this.containers,
        join(dir, 'containers.json'),
        'containers.json',
        parsePodmanContainers,
      )?.get(id);
      if (!c) continue;
      const meta: ContainerMeta = {};
      if (c.names[0]) meta.name = c.names[0];
      let image = c.imageName;
      if (!image && c.image) {
        const driver = dir.slice(dir.lastIndexOf('/') + 1, -'-containers'.length);
        const imgs = this.store(
          this.images,
          join(dirname(dir), `${driver}-images`, 'images.json'),
          'images.json',
          parsePodmanImages,
        );
        image = imgs?.get(c.image)?.[0] ?? c.image;
      }
      if (image) meta.image = image;
      return meta;
    }
    return null;
  }
}
