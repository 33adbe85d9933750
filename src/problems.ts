import { closest, distance } from "fastest-levenshtein";
import type { z } from "zod";
import type { Problem } from "./errors.js";

/** How to place a schema issue in the document it came from. */
export interface IssueContext {
  /** The name of a key path, as the user knows it (e.g. `labtest.services.db`). */
  keyName(path: readonly PropertyKey[]): string;
  /** Its line in the file, where known. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
  /** The keys allowed in the object at a path: the candidates for "did you mean". */
  knownKeysAt(path: readonly PropertyKey[]): readonly string[];
}

/** Turns schema issues into problems that name the key, its line where known, and a fix. */
export function problemsFromIssues(issues: readonly z.core.$ZodIssue[], context: IssueContext): Problem[] {
  const located = issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) =>
        unknownKey(context, [...issue.path, key], context.knownKeysAt(issue.path)),
      );
    }
    return [{ path: issue.path, problem: { where: where(context, issue.path), ...describe(issue) } }];
  });
  // In reading order, as the user will fix them; problems without a line keep their order, last.
  const lineOf = (path: readonly PropertyKey[]) => context.lineOf(path) ?? Number.POSITIVE_INFINITY;
  return located.sort((a, b) => lineOf(a.path) - lineOf(b.path)).map((l) => l.problem);
}

function describe(issue: z.core.$ZodIssue): { what: string; fix?: string } {
  switch (issue.code) {
    case "invalid_type":
      if (issue.input === undefined) return { what: "is required", fix: `add ${lastKey(issue.path)}` };
      return {
        what: `expected ${article(issue.expected)}, got ${shown(issue.input)}`,
        fix: `write ${article(issue.expected)}`,
      };
    case "invalid_value": {
      if (issue.input === undefined)
        return { what: "is required", fix: `add ${lastKey(issue.path)}: one of ${issue.values.join(", ")}` };
      const values = issue.values.map(String);
      const input = String(issue.input);
      const near = suggestion(input, values);
      return {
        what: `unknown ${lastKey(issue.path).replaceAll("_", " ")} ${shown(issue.input)}${near ? ` (did you mean "${near}"?)` : ""}`,
        fix: `use one of ${values.join(", ")}`,
      };
    }
    case "too_small":
      return { what: "must not be empty", fix: "give it a value or remove the key" };
    case "custom": {
      const fix = (issue.params as { fix?: string } | undefined)?.fix;
      return fix ? { what: issue.message, fix } : { what: issue.message };
    }
    default:
      return { what: issue.message };
  }
}

function unknownKey(context: IssueContext, path: PropertyKey[], known: readonly string[]) {
  const key = String(path[path.length - 1]);
  const near = suggestion(key, known);
  const problem: Problem = {
    where: where(context, path),
    what: `unknown option "${key}"${near ? ` (did you mean "${near}"?)` : ""}`,
    fix: near ? `rename it to ${near}` : `remove it; known options here: ${known.join(", ")}`,
  };
  return { path, problem };
}

/** The nearest known word when it is close enough to be a likely typo. */
function suggestion(input: string, known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined;
  const best = closest(input, known as string[]);
  return distance(input, best) <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

function where(context: IssueContext, path: readonly PropertyKey[]): string {
  const key = context.keyName(path);
  const line = context.lineOf(path);
  return line === undefined ? key : `line ${line}, ${key}`;
}

function lastKey(path: readonly PropertyKey[]): string {
  const key = [...path].reverse().find((p) => typeof p === "string");
  return key === undefined ? "value" : String(key);
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function shown(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `"${value}"`;
  return `${typeof value} ${String(value)}`;
}

/** A dotted key name: `["services", "db", 0]` → `services.db[0]`. */
export function dottedKey(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
    .join("")
    .slice(1);
}
