import { StateError } from "./errors.js";

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.@+-]*$/;

/**
 * Checks a state key: absolute, no empty segments, no `.`/`..`, no control characters — so a
 * key can never name anything outside the store, whatever the provider maps it to.
 */
export function validateKey(key: string): string {
  const fix = "write an absolute key such as /services/docker/postgresql/my-app";
  const at = { where: `state key ${key}` };
  if (!key.startsWith("/")) throw new StateError(`state key "${key}" is not absolute`, fix, at);
  const segments = key.slice(1).split("/");
  for (const segment of segments) {
    if (segment === "") throw new StateError(`state key "${key}" has an empty segment`, fix, at);
    if (segment === "." || segment === "..")
      throw new StateError(`state key "${key}" contains "${segment}"`, fix, at);
    if (!SEGMENT.test(segment)) {
      throw new StateError(
        `state key "${key}" has a segment "${segment}" with characters outside [A-Za-z0-9_.@+-]`,
        fix,
        at,
      );
    }
  }
  return key;
}

/**
 * The keys a lookup of `key` tries, most specific first: `/a/b/c` → `/a/b/c`, `/a/b/c/default`,
 * `/a/b/default`, `/a/default`, `/default`.
 */
export function candidateKeys(key: string): string[] {
  const segments = validateKey(key).slice(1).split("/");
  const candidates = [key, `${key}/default`];
  for (let depth = segments.length - 1; depth >= 0; depth--) {
    candidates.push(`/${[...segments.slice(0, depth), "default"].join("/")}`);
  }
  return [...new Set(candidates)];
}

/** The state key of provisioning defaults for a provider, service kind and app. */
export function serviceDefaultsKey(provider: string, service: string, app: string): string {
  return validateKey(`/services/${provider}/${service}/${app}`);
}

/** The state key listing the laboratory's directories a branch's configuration may load initial data from, for an app. */
export function initialDataDirectoriesKey(app: string): string {
  return validateKey(`/services/initial_data/directories/${app}`);
}
