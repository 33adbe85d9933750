import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, test } from "vitest";
import { readPublicKey, SshKeys } from "../../src/server/keys.js";
import { scratchDir } from "../support/project.js";

/** A new key pair made by ssh-keygen; its public half as labtest reads it. */
async function keyPair(directory: string, name: string) {
  const file = join(directory, name);
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", file]);
  return readPublicKey(`${file}.pub`);
}

test("two laboratories of one system user share its authorized_keys: each adds and removes its own keys' lines and leaves the other's", async () => {
  const scratch = await scratchDir("labtest-keys-");
  const authorizedKeys = join(scratch, "ssh", "authorized_keys");
  const staging = new SshKeys({ home: join(scratch, "staging"), authorizedKeys });
  const production = new SshKeys({ home: join(scratch, "production"), authorizedKeys });
  try {
    const grant = { scope: "deploy" as const, apps: [] };
    staging.add("alice", await keyPair(scratch, "alice"), grant);
    production.add("ci", await keyPair(scratch, "ci"), grant);
    staging.add("bob", await keyPair(scratch, "bob"), grant);
    production.remove("ci");
    production.add("carol", await keyPair(scratch, "carol"), grant);

    const served = (await readFile(authorizedKeys, "utf8"))
      .trimEnd()
      .split("\n")
      .map((line) => [
        /--home (\S+) --identity ([^"\s]+)/.exec(line)?.slice(1).join(" "),
        line.split(" ").at(-1),
      ]);
    expect(served.sort()).toEqual([
      [`${join(scratch, "production")} carol`, "labtest:carol"],
      [`${join(scratch, "staging")} alice`, "labtest:alice"],
      [`${join(scratch, "staging")} bob`, "labtest:bob"],
    ]);
  } finally {
    staging.close();
    production.close();
  }
});
