import { readFile, stat } from "node:fs/promises";
import { expect, onTestFinished, test } from "vitest";
import { AuthenticationError } from "../../src/laboratory/identity.js";
import { TokenStore } from "../../src/server/tokens.js";
import { scratchDir } from "../support/project.js";

/** A store in a scratch home whose clock the test moves. */
async function storeAt(start: string) {
  let now = new Date(start);
  const store = new TokenStore(await scratchDir("labtest-tokens-"), { now: () => now });
  onTestFinished(() => store.close());
  return { store, advance: (seconds: number) => (now = new Date(now.getTime() + seconds * 1000)) };
}

/** What authenticating `token` is refused with (or "accepted"). */
async function refusal(store: TokenStore, token: string | undefined): Promise<string> {
  try {
    await store.authenticate(token);
    return "accepted";
  } catch (error) {
    expect(error).toBeInstanceOf(AuthenticationError);
    const { message, status } = error as AuthenticationError;
    if (token) expect(message).not.toContain(token);
    expect(status).toBe(401);
    return message;
  }
}

test("a token authenticates as its name, scope and apps until it expires; its use is recorded", async () => {
  const { store, advance } = await storeAt("2026-01-01T00:00:00.000Z");
  const created = store.create({ name: "ci-shop", scope: "deploy", apps: ["shop"], expiresInSeconds: 3600 });
  expect(created).toEqual({
    name: "ci-shop",
    token: expect.stringMatching(/^lt_[A-Za-z0-9_-]{43}$/),
    scope: "deploy",
    apps: ["shop"],
    expires: "2026-01-01T01:00:00.000Z",
  });
  expect(store.list()[0]?.lastUsed).toBeNull();

  advance(60);
  expect(await store.authenticate(created.token)).toEqual({
    name: "ci-shop",
    scope: "deploy",
    apps: ["shop"],
  });
  expect(store.list()).toEqual([
    {
      name: "ci-shop",
      scope: "deploy",
      apps: ["shop"],
      created: "2026-01-01T00:00:00.000Z",
      expires: "2026-01-01T01:00:00.000Z",
      lastUsed: "2026-01-01T00:01:00.000Z",
      revoked: null,
    },
  ]);

  advance(3540);
  expect(await refusal(store, created.token)).toMatch(
    /^token ci-shop expired at 2026-01-01T01:00:00.000Z\n.*fix: ask an administrator/s,
  );
});

test("no token, an unknown one and a revoked one are each refused with their own reason", async () => {
  const { store, advance } = await storeAt("2026-01-01T00:00:00.000Z");
  const { token } = store.create({ name: "alice", scope: "admin" });
  const other = store.create({ name: "bob", scope: "read" });

  expect(await refusal(store, undefined)).toMatch(/^no token was given\n.*LABTEST_TOKEN/s);
  expect(await refusal(store, "")).toMatch(/^no token was given/);
  expect(await refusal(store, `${token}x`)).toMatch(/^the token is not one this laboratory knows/);
  expect(await refusal(store, "lt_guess")).toMatch(/^the token is not one this laboratory knows/);

  advance(10);
  store.revoke("alice");
  expect(await refusal(store, token)).toMatch(/^token alice was revoked at 2026-01-01T00:00:10.000Z/);
  // Revoking again keeps the first time; the other token is untouched.
  advance(10);
  store.revoke("alice");
  expect(store.list().map((t) => [t.name, t.revoked])).toEqual([
    ["alice", "2026-01-01T00:00:10.000Z"],
    ["bob", null],
  ]);
  expect(await store.authenticate(other.token)).toEqual({ name: "bob", scope: "read", apps: [] });

  expect(() => store.revoke("carol")).toThrow(/^there is no token named carol\n.*labtest token list/s);
});

test("a name is taken once, also by a revoked token, and a refused create changes nothing", async () => {
  const { store } = await storeAt("2026-01-01T00:00:00.000Z");
  const first = store.create({ name: "ci", scope: "deploy" });
  store.revoke("ci");
  expect(() => store.create({ name: "ci", scope: "admin" })).toThrow(
    expect.objectContaining({
      message: expect.stringMatching(/^there is already a token named ci\n/),
      exitCode: 2,
    }),
  );
  expect(store.list().map(({ name, scope }) => ({ name, scope }))).toEqual([{ name: "ci", scope: "deploy" }]);
  expect(await refusal(store, first.token)).toMatch(/revoked/);
});

test("the tokens' file holds their hashes only, and only the laboratory may read it", async () => {
  const { store } = await storeAt("2026-01-01T00:00:00.000Z");
  const tokens = ["a", "b", "c"].map((name) => store.create({ name, scope: "read" }).token);
  await store.authenticate(tokens[0]);
  store.close();
  const reopened = new TokenStore(store.file.replace(/\/tokens\.db$/, ""));
  onTestFinished(() => reopened.close());
  expect((await reopened.authenticate(tokens[1])).name).toBe("b");

  const bytes = Buffer.concat(
    await Promise.all(
      ["", "-wal"].map((suffix) => readFile(store.file + suffix).catch(() => Buffer.alloc(0))),
    ),
  );
  for (const token of tokens) {
    expect(bytes.includes(token)).toBe(false);
    // Nor its random part alone, nor the bytes it encodes.
    expect(bytes.includes(token.slice(3))).toBe(false);
    expect(bytes.includes(Buffer.from(token.slice(3), "base64url"))).toBe(false);
  }
  expect((await stat(store.file)).mode & 0o777).toBe(0o600);
});
