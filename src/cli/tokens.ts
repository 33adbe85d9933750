import { type Command, Option } from "commander";
import { UsageError } from "../errors.js";
import { MAX_DURATION_SECONDS, PROTOCOL_VERSION as v } from "../laboratory/protocol-constants.js";
import { SCOPES, type Scope } from "../laboratory/wire.js";
import { type CliIo, writeJson } from "./io.js";
import { withLab } from "./laboratory.js";
import type { StateGlobals } from "./state.js";

/** `labtest token create|list|revoke` and `labtest audit`: who may use the laboratory, and what they did. */
export function registerAccessCommands(program: Command, io: CliIo): void {
  const token = program.command("token").description("manage the tokens that let others use this laboratory");

  token
    .command("create <name>")
    .description("make a token and print it, once: the laboratory keeps only its hash")
    .addOption(
      new Option("--scope <scope>", "read: sees; deploy: also changes experiments; admin: everything")
        .choices(SCOPES)
        .makeOptionMandatory(),
    )
    .option("--app <app>", "limit it to this app (repeat for more; none: every app)", collect, [])
    .option("--expires <duration>", "make it expire after this long (e.g. 30d, 12h, 2w)")
    .action(
      async (name: string, options: { scope: Scope; app: string[]; expires?: string }, command: Command) => {
        const globals = command.optsWithGlobals<StateGlobals>();
        const expires =
          options.expires === undefined ? {} : { expiresInSeconds: seconds(options.expires, "--expires") };
        const created = await withLab(io, globals, undefined, (lab) =>
          lab.tokenCreate({ v, name, scope: options.scope, apps: options.app, ...expires }),
        );
        if (globals.json) writeJson(io, created);
        else io.stdout(`${created.token}\n`);
        // Said on stderr, so that `$(labtest token create …)` is the token alone.
        const apps = created.apps.length ? created.apps.join(", ") : "every app";
        io.stderr(
          `token ${created.name}: ${created.scope} on ${apps}, ${created.expires ? `expires ${created.expires}` : "never expires"}\n` +
            "store it now: it is shown this once, and the laboratory keeps only its hash\n",
        );
      },
    );

  token
    .command("list")
    .description("list the laboratory's tokens (never the tokens themselves)")
    .action(async (_options, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      const tokens = await withLab(io, globals, undefined, (lab) => lab.tokenList({ v }));
      if (globals.json) writeJson(io, { tokens });
      else if (tokens.length === 0) io.stdout("no tokens: make one with labtest token create\n");
      else
        io.stdout(
          table([
            ["NAME", "SCOPE", "APPS", "CREATED", "EXPIRES", "LAST USED", "REVOKED"],
            ...tokens.map((t) => [
              t.name,
              t.scope,
              t.apps.length ? t.apps.join(",") : "all",
              time(t.created),
              time(t.expires),
              time(t.lastUsed),
              time(t.revoked),
            ]),
          ]),
        );
    });

  token
    .command("revoke <name>")
    .description("revoke a token: the laboratory refuses it from now on")
    .action(async (name: string, _options, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      const revoked = await withLab(io, globals, undefined, (lab) => lab.tokenRevoke({ v, name }));
      if (globals.json) writeJson(io, revoked);
      else io.stdout(`revoked token ${revoked.revoked}\n`);
    });

  program
    .command("audit")
    .description("print the audit log: every change made to the laboratory, and every token operation")
    .option(
      "--since <when>",
      "only what happened since then: a duration back from now (1h, 7d) or an ISO date",
    )
    .action(async (options: { since?: string }, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      const since = options.since === undefined ? {} : { since: moment(options.since) };
      const entries = await withLab(io, globals, undefined, (lab) => lab.audit({ v, ...since }));
      if (globals.json) writeJson(io, { entries });
      else if (entries.length === 0) io.stdout("nothing recorded\n");
      else
        io.stdout(
          table([
            ["AT", "WHO", "WHAT", "TARGET", "FROM", "RESULT"],
            ...entries.map((e) => [time(e.at), e.who, e.what, e.target || "-", e.from, e.result]),
          ]),
        );
    });
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** A duration such as 30d, 12h or 90m, in seconds: more than 0, and at most MAX_DURATION_SECONDS. */
function seconds(duration: string, where: string): number {
  const match = /^(\d+)([smhdw])$/.exec(duration.trim());
  const total = Number(match?.[1]) * (UNITS[match?.[2] ?? ""] ?? Number.NaN);
  if (!match || !(total > 0 && total <= MAX_DURATION_SECONDS))
    throw new UsageError(`${where} ${duration} is not a duration`, [
      {
        where,
        what: "expected a whole number > 0 and a unit (s, m, h, d or w), 100 years at most",
        fix: `e.g. ${where} 30d`,
      },
    ]);
  return total;
}

/** `--since`: a duration back from now, or a date (ISO 8601), as an ISO 8601 time. */
function moment(since: string): string {
  if (/^\d+[smhdw]$/.test(since.trim()))
    return new Date(Date.now() - seconds(since, "--since") * 1000).toISOString();
  const date = /^\d{4}-\d{2}-\d{2}/.test(since) ? new Date(since) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime()))
    throw new UsageError(`--since ${since} is neither a duration nor a date`, [
      {
        where: "--since",
        what: "expected a duration back from now or an ISO 8601 date",
        fix: "e.g. --since 1h, --since 2026-01-31",
      },
    ]);
  return date.toISOString();
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** An ISO time to the minute, UTC, as the tables show it; "-" for none. */
export function time(iso: string | null): string {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : "-";
}

/** Rows as columns aligned with spaces; the last column is not padded. */
export function table(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, column) =>
    Math.max(...rows.map((row) => (row[column] ?? "").length)),
  );
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
        .join("  "),
    )
    .join("\n")
    .concat("\n");
}
