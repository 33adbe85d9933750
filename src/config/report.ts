import { ConfigError, type Problem } from "../errors.js";

/**
 * How many problems an error shows: a file of noise has hundreds, each echoing some of it, and
 * the first ones are where to start anyway.
 */
export const SHOWN_PROBLEMS = 20;

/** How much of one text an error shows: a single line of noise can be megabytes. */
const SHOWN_CHARACTERS = 500;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * `text` as a terminal may show it: control characters (escape sequences, bells, line breaks)
 * written as `\uXXXX`, and at most SHOWN_CHARACTERS of it.
 */
export function printable(text: string): string {
  const bounded = text.length > SHOWN_CHARACTERS ? `${text.slice(0, SHOWN_CHARACTERS)}…` : text;
  return bounded.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * A ConfigError for problems found in a file, `what` followed by how many: each problem
 * printable, and only the first SHOWN_PROBLEMS of them.
 */
export function configError(
  what: string,
  problems: Problem[],
  options: { cause?: unknown } = {},
): ConfigError {
  const shown = problems.slice(0, SHOWN_PROBLEMS).map((p) => ({
    where: printable(p.where),
    what: printable(p.what),
    ...(p.fix === undefined ? {} : { fix: printable(p.fix) }),
  }));
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  const left = shown.length < problems.length ? `, the first ${shown.length} shown` : "";
  return new ConfigError(`${what} (${count}${left}):`, shown, options);
}
