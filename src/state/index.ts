import { serviceDefaultsKey } from "./keys.js";
import { lookup, type MergeStrategy } from "./lookup.js";
import type { StateStore } from "./store.js";

export { StateError } from "./errors.js";
export { candidateKeys, serviceDefaultsKey, validateKey } from "./keys.js";
export { type Lookup, lookup, MERGE_STRATEGIES, type MergeStrategy } from "./lookup.js";
export { type OpenedState, openState, type StateOptions } from "./open.js";
export { isWritable, type StateStore, type WritableStateStore } from "./store.js";

/**
 * Provisioning defaults for a provider and service kind, with per-app overrides: a deep merge
 * of `/services/<provider>/<service>/<app>` and its fallbacks, so an administrator can change
 * one field for one app. Empty when state has nothing.
 */
export async function serviceDefaults(
  store: StateStore,
  provider: string,
  service: string,
  app: string,
  merge: MergeStrategy = "deep",
): Promise<Record<string, unknown>> {
  const result = await lookup(store, serviceDefaultsKey(provider, service, app), merge);
  return typeof result.value === "object" && result.value !== null && !Array.isArray(result.value)
    ? (result.value as Record<string, unknown>)
    : {};
}
