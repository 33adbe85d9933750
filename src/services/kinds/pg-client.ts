// pg, loaded on first use rather than when the service kinds are registered: a command that opens
// no PostgreSQL server (most, and every --help) does not pay its load. Required, not imported, so
// that the quoting helpers stay synchronous.
import { createRequire } from "node:module";
import type pg from "pg";

let loaded: typeof pg | undefined;

/** The pg module, loaded the first time it is asked for. */
export function loadPg(): typeof pg {
  loaded ??= createRequire(import.meta.url)("pg") as typeof pg;
  return loaded;
}

/** `name` quoted as an SQL identifier. */
export const ident = (name: string): string => loadPg().escapeIdentifier(name);

/** `text` quoted as an SQL string literal. */
export const literal = (text: string): string => loadPg().escapeLiteral(text);
