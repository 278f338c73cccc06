// Route selectors by container metadata (name, image, runtime, pod, Kubernetes namespace, labels), globs, matched once
// per container rather than per event.
import { globMatch } from './cgroup-glob';
import type { ContainerSelector } from './container-selector';

export type { ContainerSelector, MetaField } from './container-selector';

/** What routing knows about a container: from its registry entry, or given to `route test`. */
export interface ContainerFacts {
  name?: string | undefined;
  image?: string | undefined;
  runtime?: string | undefined;
  pod?: string | undefined;
  namespace?: string | undefined;
  labels?: Readonly<Record<string, string>> | undefined;
}

/** The containers the router may ask about; `version` changes whenever a container is added, completed or retired. */
export interface ContainerDirectory {
  readonly version: number;
  facts(contid: bigint): ContainerFacts | undefined;
}

const anyGlob = (globs: readonly string[], v: string | undefined): boolean =>
  v !== undefined && globs.some((g) => globMatch(g, v));

export function containerSelectorMatches(sel: ContainerSelector, facts: ContainerFacts | undefined): boolean {
  if (!facts) return false;
  for (const f of sel.fields) if (!anyGlob(f.globs, facts[f.field])) return false;
  for (const l of sel.labels) {
    const labels = facts.labels;
    const v = labels && Object.prototype.hasOwnProperty.call(labels, l.key) ? labels[l.key] : undefined;
    if (!anyGlob(l.globs, v)) return false;
  }
  return true;
}
