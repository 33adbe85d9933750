import { createHash } from "node:crypto";

/** Longest DNS label (RFC 1035). */
export const DNS_LABEL_MAX = 63;
/** Longest experiment name: leaves room in a 63-character host label for an app name. */
export const EXPERIMENT_NAME_MAX = 40;
/** PostgreSQL truncates identifiers beyond 63 bytes (NAMEDATALEN - 1). */
export const POSTGRES_IDENTIFIER_MAX = 63;
/** MySQL/MariaDB: database names up to 64 characters, user names up to 32 (MySQL 5.7+). */
export const MYSQL_DATABASE_MAX = 64;
export const MYSQL_USER_MAX = 32;

const HASH_LENGTH = 6;

/** A short, stable hash of a string: the suffix that keeps two normalised names apart. */
export function shortHash(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex").slice(0, HASH_LENGTH);
}

/** Accents dropped, lower case, runs of anything outside [a-z0-9] collapsed into one separator, trimmed. */
function slug(text: string, separator: "-" | "_"): string {
  return text
    .normalize("NFKD")
    .replace(/\p{Mn}/gu, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, separator)
    .replace(new RegExp(`^\\${separator}+|\\${separator}+$`, "g"), "");
}

/**
 * Makes `body` fit `max` characters; when `changed`, or when it had to be cut, appends the
 * hash of `original` so two different originals never share a result.
 */
function withHash(body: string, original: string, changed: boolean, max: number, separator: string): string {
  if (!changed && body.length <= max) return body;
  const hash = shortHash(original);
  const room = max - hash.length - separator.length;
  const cut = body.slice(0, room).replace(/[-_]+$/, "");
  return cut === "" ? hash : `${cut}${separator}${hash}`;
}

/** Whether a string is already a valid name: lower-case DNS label characters, no runs or edges. */
export function isValidName(name: string, max = DNS_LABEL_MAX): boolean {
  return name.length <= max && /^[a-z0-9]+(-[a-z0-9]+)*$/.test(name);
}

/**
 * The experiment name for a branch (or a requested name): a DNS label of at most 40 characters.
 * A name that is already valid is kept; any other gets the hash of the original appended,
 * e.g. `feature/Login` → `feature-login-<hash>`.
 */
export function experimentName(branch: string): string {
  return normalizedName(branch, EXPERIMENT_NAME_MAX);
}

/** An app name normalised like an experiment name, up to a whole DNS label. */
export function appName(name: string): string {
  return normalizedName(name, DNS_LABEL_MAX);
}

/** The form a name would take without the hash: what to suggest to a user who typed it. */
export function suggestedName(name: string): string {
  return slug(name, "-").slice(0, DNS_LABEL_MAX).replace(/-+$/, "") || "app";
}

function normalizedName(original: string, max: number): string {
  const body = slug(original, "-");
  return withHash(body, original, body !== original || body === "", max, "-");
}

/**
 * A DNS label from an already expanded host name pattern. Patterns may join several names, so
 * the label is re-normalised and cut to 63 characters with a hash when it does not fit.
 */
export function hostLabel(expanded: string): string {
  return normalizedName(expanded, DNS_LABEL_MAX);
}

/** Name for a Docker container, volume or network that belongs to an experiment. */
export function resourceName(app: string, experiment: string, ...rest: string[]): string {
  const original = ["labtest", app, experiment, ...rest].join("-");
  const body = slug(original, "-");
  return withHash(body, original, body !== original, DNS_LABEL_MAX, "-");
}

/**
 * An SQL identifier (database or role name) built from name parts: `[a-z][a-z0-9_]*`, at most
 * `max` characters, so it is valid unquoted in PostgreSQL and MySQL (we quote it anyway).
 */
export function sqlIdentifier(parts: readonly string[], max: number): string {
  const original = parts.join("_");
  let body = slug(original, "_");
  if (!/^[a-z]/.test(body)) body = `x_${body}`.replace(/_+$/, "");
  const changed = body !== original;
  const result = withHash(body, original, changed, max, "_");
  return /^[a-z]/.test(result) ? result : `x${result}`.slice(0, max);
}

/** The database (schema) name of an experiment's tenant, valid for PostgreSQL and MySQL. */
export function databaseName(app: string, experiment: string, service: string): string {
  return sqlIdentifier([app, experiment, service], POSTGRES_IDENTIFIER_MAX);
}

/** The role/user of an experiment's tenant, short enough for MySQL's 32-character limit. */
export function roleName(app: string, experiment: string, service: string): string {
  return sqlIdentifier([app, experiment, service], MYSQL_USER_MAX);
}

/** The prefix of a service's environment variables: `db` → `DB`, `my-cache` → `MY_CACHE`. */
export function envPrefix(serviceName: string): string {
  return serviceName.toUpperCase().replace(/[^A-Z0-9]/g, "_");
}
