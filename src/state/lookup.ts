import { candidateKeys } from "./keys.js";
import type { StateStore } from "./store.js";

/**
 * How a lookup combines candidates, as Hiera does: `first` — the most specific value wins
 * whole; `deep` — objects of every candidate are merged, the more specific winning key by key.
 */
export type MergeStrategy = "first" | "deep";
export const MERGE_STRATEGIES: readonly MergeStrategy[] = ["first", "deep"];

export interface Lookup {
  key: string;
  merge: MergeStrategy;
  found: boolean;
  value: unknown;
  /** Every candidate tried, most specific first, and whether the store had it. */
  candidates: Array<{ key: string; found: boolean; value?: unknown }>;
  /** `first`: the candidate that answered. */
  answeredBy?: string;
  /** `deep`: for each field (dotted path of a leaf), the candidate that supplied it. */
  fieldSources?: Record<string, string>;
}

/** Looks `key` up: all candidates are read together, then combined by `merge`. */
export async function lookup(
  store: StateStore,
  key: string,
  merge: MergeStrategy = "first",
): Promise<Lookup> {
  const keys = candidateKeys(key);
  const values = await store.read(keys);
  const candidates = keys.map((k) =>
    values.has(k) ? { key: k, found: true, value: values.get(k) } : { key: k, found: false },
  );
  const hits = candidates.filter((c) => c.found);
  const first = hits[0];
  if (!first) return { key, merge, found: false, value: undefined, candidates };
  if (merge === "first" || !isObject(first.value)) {
    return { key, merge, found: true, value: first.value, candidates, answeredBy: first.key };
  }
  // Least specific first, so that each more specific candidate overrides what came before.
  const fieldSources: Record<string, string> = {};
  let value: Record<string, unknown> = {};
  for (const hit of [...hits].reverse()) {
    if (isObject(hit.value)) value = mergeInto(value, hit.value, hit.key, fieldSources, "");
  }
  return { key, merge, found: true, value, candidates, fieldSources };
}

function mergeInto(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
  source: string,
  sources: Record<string, string>,
  prefix: string,
): Record<string, unknown> {
  const result = { ...base };
  for (const [field, value] of Object.entries(over)) {
    const path = prefix ? `${prefix}.${field}` : field;
    const current = result[field];
    if (isObject(current) && isObject(value)) {
      result[field] = mergeInto(current, value, source, sources, path);
    } else {
      for (const known of Object.keys(sources)) if (known.startsWith(`${path}.`)) delete sources[known];
      result[field] = value;
      recordLeaves(value, path, source, sources);
    }
  }
  return result;
}

function recordLeaves(value: unknown, path: string, source: string, sources: Record<string, string>): void {
  if (isObject(value) && Object.keys(value).length > 0) {
    for (const [field, inner] of Object.entries(value))
      recordLeaves(inner, `${path}.${field}`, source, sources);
  } else {
    sources[path] = source;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
