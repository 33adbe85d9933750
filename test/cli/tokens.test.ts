import { userInfo } from "node:os";
import { expect, test } from "vitest";
import { AuditLog } from "../../src/server/audit.js";
import { TokenStore } from "../../src/server/tokens.js";
import { runCli } from "../support/cli.js";
import { scratchDir } from "../support/project.js";

/** The CLI on a laboratory in a scratch home, run by a user who did not use sudo. */
async function laboratory() {
  const home = await scratchDir("labtest-tokens-cli-");
  const env = { ...process.env, LABTEST_HOME: home, SUDO_USER: "" };
  return { home, labtest: (...argv: string[]) => runCli(argv, home, env) };
}

/** What the laboratory of `home` knows, read as the server reads it. */
async function withStores<T>(
  home: string,
  use: (tokens: TokenStore, audit: AuditLog) => Promise<T>,
): Promise<T> {
  const tokens = new TokenStore(home);
  const audit = new AuditLog(home);
  try {
    return await use(tokens, audit);
  } finally {
    tokens.close();
    audit.close();
  }
}

test("token create prints the token once, which then authenticates; list shows it without it; revoke ends it", async () => {
  const { home, labtest } = await laboratory();
  const created = await labtest(
    "token",
    "create",
    "ci-shop",
    "--scope",
    "deploy",
    "--app",
    "shop",
    "--app",
    "blog",
    "--expires",
    "30d",
  );
  expect(created.code).toBe(0);
  const token = created.stdout.trim();
  expect(token).toMatch(/^lt_[A-Za-z0-9_-]{43}$/);
  expect(created.stderr).toMatch(
    /^token ci-shop: deploy on shop, blog, expires \d{4}-.*\nstore it now: it is shown this once/,
  );
  const identity = await withStores(home, (tokens) => tokens.authenticate(token));
  expect(identity).toEqual({ name: "ci-shop", scope: "deploy", apps: ["shop", "blog"] });

  const json = await labtest("--json", "token", "create", "admin-1", "--scope", "admin");
  expect(JSON.parse(json.stdout)).toEqual({
    name: "admin-1",
    token: expect.stringMatching(/^lt_/),
    scope: "admin",
    apps: [],
    expires: null,
  });

  const listed = await labtest("token", "list");
  expect(listed.code).toBe(0);
  expect(listed.stdout).not.toContain("lt_");
  const rows = listed.stdout
    .trimEnd()
    .split("\n")
    .map((line) => line.split(/\s{2,}/));
  expect(rows[0]).toEqual(["NAME", "SCOPE", "APPS", "CREATED", "EXPIRES", "LAST USED", "REVOKED"]);
  expect(rows.slice(1).map((row) => [row[0], row[1], row[2], row[5], row[6]])).toEqual([
    ["admin-1", "admin", "all", "-", "-"],
    ["ci-shop", "deploy", "shop,blog", expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d$/), "-"],
  ]);
  const listedJson = JSON.parse((await labtest("--json", "token", "list")).stdout) as {
    tokens: { name: string }[];
  };
  expect(listedJson.tokens.map((t) => t.name)).toEqual(["admin-1", "ci-shop"]);

  expect(await labtest("token", "revoke", "ci-shop")).toMatchObject({
    code: 0,
    stdout: "revoked token ci-shop\n",
  });
  await expect(withStores(home, (tokens) => tokens.authenticate(token))).rejects.toThrow(
    /^token ci-shop was revoked/,
  );
});

test("bad input is refused with what to do, and changes nothing", async () => {
  const { home, labtest } = await laboratory();
  await labtest("token", "create", "ci", "--scope", "read");
  const refusals: [string[], RegExp][] = [
    [
      ["token", "create", "x", "--scope", "root"],
      /argument 'root' is invalid. Allowed choices are read, deploy, admin/,
    ],
    [["token", "create", "x"], /required option '--scope <scope>' not specified/],
    [
      ["token", "create", "x", "--scope", "read", "--expires", "soon"],
      /--expires soon is not a duration\n.*e\.g\. --expires 30d/s,
    ],
    [["token", "create", "x", "--scope", "read", "--expires", "0d"], /--expires 0d is not a duration/],
    // Past any date a clock can say: a user's mistake, not a crash.
    [
      ["token", "create", "x", "--scope", "read", "--expires", "999999999d"],
      /--expires 999999999d is not a duration\n.*100 years at most/s,
    ],
    [["audit", "--since", "99999999999w"], /--since 99999999999w is not a duration/],
    [
      ["token", "create", "Bad Name", "--scope", "read"],
      /cannot take this tokenCreate request\n.*name: lowercase letters/s,
    ],
    [
      ["token", "create", "ci", "--scope", "admin"],
      /there is already a token named ci\n.*choose another name/s,
    ],
    [["token", "revoke", "nobody"], /there is no token named nobody\n.*labtest token list/s],
    [["audit", "--since", "yesterday"], /--since yesterday is neither a duration nor a date/],
  ];
  for (const [argv, message] of refusals) {
    const refused = await labtest(...argv);
    expect(refused.code, argv.join(" ")).toBe(2);
    expect(refused.stderr, argv.join(" ")).toMatch(message);
    expect(refused.stdout).toBe("");
  }
  const tokens = await withStores(home, async (store) => store.list());
  expect(tokens.map(({ name, scope, revoked }) => ({ name, scope, revoked }))).toEqual([
    { name: "ci", scope: "read", revoked: null },
  ]);
});

test("labtest audit shows each token operation by the local user, also refused ones; --since and --json choose", async () => {
  const { home, labtest } = await laboratory();
  const user = userInfo().username;
  await labtest("token", "create", "ci", "--scope", "read");
  await labtest("token", "create", "ci", "--scope", "read");
  await labtest("token", "revoke", "ci");
  await withStores(home, (_, audit) =>
    audit.record({
      at: "2020-01-01T00:00:00.000Z",
      who: "old",
      what: "gc",
      target: "",
      result: "ok",
      from: "ssh",
    }),
  );

  const shown = await labtest("audit", "--since", "1h");
  expect(shown.code).toBe(0);
  const rows = shown.stdout
    .trimEnd()
    .split("\n")
    .map((line) => line.split(/\s{2,}/));
  expect(rows[0]).toEqual(["AT", "WHO", "WHAT", "TARGET", "FROM", "RESULT"]);
  expect(rows.slice(1).map((row) => row.slice(1))).toEqual([
    [user, "tokenCreate", "ci", "local", "ok"],
    [user, "tokenCreate", "ci", "local", "UsageError: there is already a token named ci"],
    [user, "tokenRevoke", "ci", "local", "ok"],
  ]);

  const all = JSON.parse((await labtest("--json", "audit")).stdout) as {
    entries: { who: string; what: string }[];
  };
  // The first audit's reading is recorded too: it is an administrator's request.
  expect(all.entries.map((e) => `${e.who} ${e.what}`)).toEqual([
    "old gc",
    `${user} tokenCreate`,
    `${user} tokenCreate`,
    `${user} tokenRevoke`,
    `${user} audit`,
  ]);
  const since = JSON.parse((await labtest("--json", "audit", "--since", "2019-12-31")).stdout) as {
    entries: unknown[];
  };
  expect(since.entries).toHaveLength(6);
  expect(JSON.parse((await labtest("--json", "audit", "--since", "2030-01-01")).stdout)).toEqual({
    entries: [],
  });
});
