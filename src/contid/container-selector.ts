// The compiled form of a route's container selector (`routes[].container`) and the checks on its globs.

export const META_FIELDS = ['name', 'image', 'runtime', 'pod', 'namespace'] as const;
export type MetaField = (typeof META_FIELDS)[number];

/**
 * A compiled container selector: every field given must match (any of its globs), every label given must be present
 * and match. A container without the field (a hookless one has no image) does not match a selector on it.
 */
export interface ContainerSelector {
  fields: Array<{ field: MetaField; globs: string[] }>;
  labels: Array<{ key: string; globs: string[] }>;
  /** The selector as written, for messages and `config check`. */
  text: string;
}

export const META_GLOB_MAX = 256;
const META_GLOB_WILDCARDS_MAX = 16;

/** Checks one glob (`*` any run of characters, `?` one); an error reason or null. No RegExp: values are untrusted. */
export function checkMetaGlob(p: string): string | null {
  if (p.length === 0) return 'a glob cannot be empty';
  if (p.length > META_GLOB_MAX) return `a glob is at most ${META_GLOB_MAX} characters`;
  if (/[\x00-\x1f\x7f]/.test(p)) return 'a glob cannot hold control characters';
  if ((p.match(/[*?]/g) ?? []).length > META_GLOB_WILDCARDS_MAX)
    return `a glob has at most ${META_GLOB_WILDCARDS_MAX} wildcards`;
  return null;
}
