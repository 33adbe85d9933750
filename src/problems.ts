import { closest, distance } from "fastest-levenshtein";
import type { z } from "zod";
import type { Problem } from "../errors.js";
import type { ConfigDocument } from "./formats.js";
import { SECTION } from "./formats.js";
import { OPTION_NAMES, SERVICE_OPTION_NAMES, SERVICE_OPTIONS_OPTION_NAMES } from "./schema.js";

/** Turns schema issues into problems that name the key, its line where known, and a fix. */
export function problemsFromIssues(issues: readonly z.core.$ZodIssue[], doc: ConfigDocument): Problem[] {
  const located = issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => unknownKey(doc, [...issue.path, key], knownKeysAt(issue.path)));
    }
    return [{ path: issue.path, problem: { where: where(doc, issue.path), ...describe(issue) } }];
  });
  // In reading order, as the user will fix them; problems without a line keep their order, last.
  const lineOf = (path: readonly PropertyKey[]) => doc.lineOf(path) ?? Number.POSITIVE_INFINITY;
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

function unknownKey(doc: ConfigDocument, path: PropertyKey[], known: readonly string[]) {
  const key = String(path[path.length - 1]);
  const near = suggestion(key, known);
  const problem: Problem = {
    where: where(doc, path),
    what: `unknown option "${key}"${near ? ` (did you mean "${near}"?)` : ""}`,
    fix: near ? `rename it to ${near}` : `remove it; known options here: ${known.join(", ")}`,
  };
  return { path, problem };
}

/** The options that are valid at a path of the section (top level, a service, its options). */
function knownKeysAt(path: readonly PropertyKey[]): readonly string[] {
  if (path[0] === "services" && path.length === 2) return SERVICE_OPTION_NAMES;
  if (path[0] === "services" && path.length === 3) return SERVICE_OPTIONS_OPTION_NAMES;
  return OPTION_NAMES;
}

/** The nearest known word when it is close enough to be a likely typo. */
function suggestion(input: string, known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined;
  const best = closest(input, known as string[]);
  return distance(input, best) <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

function where(doc: ConfigDocument, path: readonly PropertyKey[]): string {
  const key = [SECTION, ...path]
    .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
    .join("")
    .slice(1);
  const line = doc.lineOf(path);
  return line === undefined ? key : `line ${line}, ${key}`;
}

function lastKey(path: readonly PropertyKey[]): string {
  const key = [...path].reverse().find((p) => typeof p === "string");
  return key === undefined ? SECTION : String(key);
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
