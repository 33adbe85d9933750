import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, test } from "vitest";
import { runCli } from "../support/cli.js";
import { scratchDir } from "../support/project.js";
import { laptopEnv } from "../support/remote.js";
import { startTestSshd } from "../support/sshd.js";

/**
 * A laptop whose ssh configuration reaches the test sshd as `lab` but knows the host keys in
 * `knownHosts` only, and leaves host-key checking as ssh's default (ask, which BatchMode refuses).
 */
async function laptopKnowing(knownHosts: string) {
  const sshd = await startTestSshd();
  const client = await sshd.client("dev");
  const home = await scratchDir("labtest-ssh-laptop-");
  const config = join(home, "ssh_config");
  const given = await readFile(client.config, "utf8");
  await writeFile(
    config,
    given
      .replace(/^\s*UserKnownHostsFile .*$/m, `  UserKnownHostsFile ${knownHosts}`)
      .replace(/^\s*(StrictHostKeyChecking|BatchMode) .*\n/gm, ""),
  );
  // Named from the home, as a user writes it: no shell expands LABTEST_SSH's ~/.
  return { sshd, env: { ...(await laptopEnv()), HOME: home, LABTEST_SSH: "ssh -F ~/ssh_config" } };
}

test("a laboratory whose host key ssh does not know is refused with ssh's own message, and so is one whose key changed (LABTEST_SSH naming its -F file from ~/)", async () => {
  const scratch = await scratchDir();
  const unknown = join(scratch, "known_hosts.empty");
  await writeFile(unknown, "");
  const first = await laptopKnowing(unknown);
  const refused = await runCli(["--lab", "lab", "list", "--all"], scratch, first.env);
  expect(refused.code).toBe(77);
  expect(refused.stdout).toBe("");
  expect(refused.stderr).toContain("ssh could not reach the laboratory at ssh://lab");
  expect(refused.stderr).toContain("Host key verification failed.");
  expect(refused.stderr).toContain("fix: ssh does not know the laboratory's host key");
  expect(refused.stderr).not.toMatch(/^\s+at /m);

  const otherKey = join(scratch, "other");
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", otherKey]);
  const changed = join(scratch, "known_hosts.changed");
  const second = await laptopKnowing(changed);
  const otherPublic = (await readFile(`${otherKey}.pub`, "utf8")).split(" ").slice(0, 2).join(" ");
  await writeFile(changed, `[127.0.0.1]:${second.sshd.port} ${otherPublic}\n`);
  const intercepted = await runCli(["--lab", "lab", "list", "--all"], scratch, second.env);
  expect(intercepted.code).toBe(77);
  expect(intercepted.stderr).toContain("REMOTE HOST IDENTIFICATION HAS CHANGED");
  expect(intercepted.stderr).toContain("fix: someone may be intercepting the connection");
  expect(intercepted.stderr).not.toMatch(/^\s+at /m);
  // ssh refused before logging in: the laboratory never saw a key.
  expect(second.sshd.log()).not.toMatch(/Accepted publickey/);
});

test("a key the laboratory was not given is refused with ssh's message and how to get one added", async () => {
  const sshd = await startTestSshd();
  const stranger = await sshd.client("stranger");
  const env = { ...(await laptopEnv()), LABTEST_SSH: `ssh -F ${stranger.config}` };
  const refused = await runCli(["--lab", sshd.alias, "list", "--all"], await scratchDir(), env);
  expect(refused.code).toBe(77);
  expect(refused.stderr).toMatch(
    /ssh could not reach the laboratory at ssh:\/\/lab\n.*Permission denied \(publickey\)/,
  );
  expect(refused.stderr).toContain("fix: the laboratory does not accept your key");
  expect(refused.stderr).not.toMatch(/^\s+at /m);
});
