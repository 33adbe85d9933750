import { isAbsolute } from "node:path";
import { StateError } from "./errors.js";
import { initialDataDirectoriesKey, serviceDefaultsKey } from "./keys.js";
import { lookup, type MergeStrategy } from "./lookup.js";
import type { StateStore } from "./store.js";

export { StateError } from "./errors.js";
export { candidateKeys, initialDataDirectoriesKey, serviceDefaultsKey, validateKey } from "./keys.js";
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

/**
 * The laboratory's directories from which a branch's configuration may load initial data, for
 * an app: `/services/initial_data/directories/<app>`, else `…/<app>/default` or `…/default`.
 * The walk stops there: the general fallbacks (`/services/default`, `/default`) hold other
 * defaults, and a list there must not open the laboratory's files to every app. `key` is the
 * app's own key, for messages; `directories` is empty when the administrator allows none.
 */
export async function initialDataDirectories(
  store: StateStore,
  app: string,
): Promise<{ key: string; directories: string[] }> {
  const key = initialDataDirectoriesKey(app);
  const { candidates } = await lookup(store, key);
  const prefix = key.slice(0, key.lastIndexOf("/") + 1);
  const found = candidates.find((c) => c.found && c.key.startsWith(prefix));
  if (!found) return { key, directories: [] };
  const value = found.value;
  if (!Array.isArray(value) || !value.every((d) => typeof d === "string" && isAbsolute(d)))
    throw new StateError(
      `state key ${found.key} is ${JSON.stringify(value)}, not a list of absolute directories`,
      `write a list such as ["/backups/${app}"]: labtest state set ${found.key} '["/backups/${app}"]'`,
      { where: `state key ${found.key}` },
    );
  return { key, directories: value };
}
