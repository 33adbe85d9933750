import { join } from "node:path";
import { PassThrough } from "node:stream";
import { text } from "node:stream/consumers";
import { expect, test } from "vitest";
import type { Laboratory } from "../../src/laboratory/laboratory.js";
import { PROTOCOL_VERSION as v } from "../../src/laboratory/protocol.js";
import { SshKeys } from "../../src/server/keys.js";
import { serveStdio } from "../../src/server/stdio.js";
import { scratchDir } from "../support/project.js";

/** One session of `labtest request` in this process, on a laboratory that lists nothing. */
async function session(keyName: string, line: string) {
  const home = await scratchDir();
  const keys = new SshKeys({ home, authorizedKeys: join(home, "ssh", "authorized_keys") });
  const input = new PassThrough();
  const output = new PassThrough();
  const answer = text(output);
  const laboratory = { list: async () => [], close: async () => undefined } as unknown as Laboratory;
  const served = serveStdio({
    env: { SSH_ORIGINAL_COMMAND: "labtest request", SSH_CLIENT: "192.0.2.7 50000 22" },
    home,
    keyName,
    identify: (name) => keys.identity(name),
    laboratory: () => laboratory,
    audit: { record: async () => undefined },
    input,
    output,
    stderr: () => undefined,
  });
  input.write(`${line}\n`);
  const exitCode = await served;
  keys.close();
  return {
    exitCode,
    lines: (await answer)
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l)),
  };
}

test("a key the laboratory no longer has (its line lingering) is refused with an error line, exit 77", async () => {
  const answer = await session("gone", JSON.stringify({ kind: "list", request: { v } }));
  expect(answer.exitCode).toBe(77);
  expect(answer.lines).toEqual([
    { error: expect.objectContaining({ type: "AuthenticationError", exitCode: 77 }) },
  ]);
  expect(answer.lines[0].error.summary).toMatch(/the SSH key gone is not one this laboratory knows/);
});

test("a line that is not JSON, or of no known kind, is answered with a usage error line", async () => {
  const garbled = await session("gone", "{not json");
  expect(garbled).toMatchObject({ exitCode: 2, lines: [{ error: { type: "UsageError" } }] });
  expect(garbled.lines[0].error.problems[0].what).toMatch(/it is not JSON/);
  const unknown = await session("gone", JSON.stringify({ kind: "rm -rf", request: {} }));
  expect(unknown.lines[0].error.problems[0].what).toMatch(
    /"rm -rf" is not a request kind of this laboratory/,
  );
});
